"""Validation metrics of each estimator, next to the trivial baseline each must beat.

- URC: MAE of the predicted final-answer similarity (baseline: the training mean) and accuracy of
  the ``score > τ_req`` decision (baseline: the training majority decision).
- DP: exact and within-one accuracy over 0..D and ∞ (∞ is within one of nothing but ∞), and
  balanced accuracy (mean recall per class), the headline: most LLM subtasks have distance 0,
  so the majority class already scores a high exact accuracy while telling the policy nothing;
  baseline: the training majority class.
- SP: share of predictions whose SBERT similarity to the true next subtask exceeds the threshold
  (0.7); baseline: copy the current subtask as the prediction.
- SD: share of decompositions whose every part passes the SSE test; baseline: no decomposition
  (the subtask as its only part). The SSE test here is the one SP_SLM/SP_LLM estimate, run for
  real: each part is executed in turn by both backends with the same history, and it passes when
  the two next subtasks they write are similar above κ (the default threshold base, 0.6 + 0.02·id
  capped at 0.7, as the policy uses). With the simulated backends that costs microseconds.

- divergence: ROC AUC of the pre head's P(agree) for "the SLM's next subtask parts from the
  LLM's" on held-out requests (baseline: the paper's signal, the cosine of the SP_SLM and SP_LLM
  predictions), and the post head's AUC with the SLM's logprobs; where the profile knows each
  step's ground truth (the simulator), both AUCs for "the SLM's step is wrong" too.

Every result carries ``metric`` (the headline, higher is better except MAE) and ``baseline``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.backends.base import GenerationParams, ModelBackend
from hera_router.config import RoutingSettings
from hera_router.db.enums import Executor
from hera_router.estimators.decomposer import DecompositionExample
from hera_router.estimators.distance import distance_class
from hera_router.estimators.predictor import SubtaskPair
from hera_router.estimators.similarity import Embedder

Metrics = dict[str, Any]


def urc_baseline(train_targets: Sequence[float], tau: float) -> tuple[float, bool]:
    """(training mean, training majority decision) — what the trivial baselines predict."""
    if not train_targets:
        return 0.0, False
    return float(np.mean(train_targets)), bool(np.mean(np.asarray(train_targets) > tau) >= 0.5)


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """ROC AUC of ``scores`` for ``labels`` (None when only one class is present)."""
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


MIN_TRUSTED_AUC = 0.55
"""A score whose held-out AUC is below this tells the policy nothing: its stage is not trusted."""


def urc_metrics(
    predictions: Sequence[float], targets: Sequence[float], mean: float, majority: bool, tau: float
) -> Metrics:
    predicted, truth = np.asarray(predictions, dtype=float), np.asarray(targets, dtype=float)
    mae, baseline_mae = float(np.mean(np.abs(predicted - truth))), float(np.mean(np.abs(mean - truth)))
    # Whether the score ranks requests by how well the SLM alone does: a constant cannot.
    ranking = auc(list(truth > tau), list(predicted)) if len(truth) else None
    spread = float(np.std(predicted)) if len(predicted) else 0.0
    trusted = bool(mae < baseline_mae and ranking is not None and ranking >= MIN_TRUSTED_AUC and spread > 1e-3)
    return {
        "auc": ranking,
        "prediction_std": spread,
        "trusted": trusted,
        "metric": "accuracy",
        "mae": mae,
        "baseline_mae": baseline_mae,
        "accuracy": float(np.mean((predicted > tau) == (truth > tau))),
        "baseline_accuracy": float(np.mean((truth > tau) == majority)),
        "train_mean": mean,
        "train_majority_decision": majority,
        "n_validation": len(truth),
    }


def dp_majority(train_targets: Sequence[int | None], max_distance: int) -> int:
    """The most common training class (the trivial baseline's constant prediction)."""
    counts = Counter(distance_class(d, max_distance) for d in train_targets)
    return counts.most_common(1)[0][0] if counts else max_distance + 1


def dp_metrics(
    predictions: Sequence[int | None],
    targets: Sequence[int | None],
    majority: int,
    max_distance: int,
) -> Metrics:
    predicted = [distance_class(d, max_distance) for d in predictions]
    truth = [distance_class(d, max_distance) for d in targets]

    def within_one(a: int, b: int) -> bool:
        infinite = max_distance + 1
        return a == b if infinite in (a, b) else abs(a - b) <= 1

    n = max(1, len(truth))
    present = sorted(set(truth))

    def balanced(guesses: Sequence[int]) -> float:
        # Mean recall over the classes present: the majority class alone scores 1/classes, which
        # is what makes it a meaningful yardstick when most LLM subtasks have distance 0.
        recalls = [
            sum(g == t for g, t in zip(guesses, truth, strict=True) if t == label) / truth.count(label)
            for label in present
        ]
        return float(np.mean(recalls)) if recalls else 0.0

    return {
        "metric": "balanced_accuracy",
        "balanced_accuracy": balanced(predicted),
        "baseline_balanced_accuracy": balanced([majority] * len(truth)),
        "exact": sum(p == t for p, t in zip(predicted, truth, strict=True)) / n,
        "within_1": sum(within_one(p, t) for p, t in zip(predicted, truth, strict=True)) / n,
        "baseline_exact": sum(t == majority for t in truth) / n,
        "baseline_within_1": sum(within_one(majority, t) for t in truth) / n,
        "majority_class": majority,
        "n_validation": len(truth),
    }


def sp_metrics(
    predicted: np.ndarray[Any, np.dtype[np.float32]],
    pairs: Sequence[SubtaskPair],
    embedder: Embedder,
    threshold: float,
) -> Metrics:
    """``predicted``: one normalised embedding per pair, the predicted next subtask."""
    truth = embedder.embed_many([p.next_subtask for p in pairs])
    current = embedder.embed_many([p.state.current for p in pairs])
    similarity = np.sum(predicted * truth, axis=1)
    copy = np.sum(current * truth, axis=1)
    return {
        "metric": "share_similar",
        "share_similar": float(np.mean(similarity > threshold)),
        "baseline_share_similar": float(np.mean(copy > threshold)),
        "mean_similarity": float(np.mean(similarity)),
        "baseline_mean_similarity": float(np.mean(copy)),
        "n_validation": len(pairs),
    }


def kappa(seq: int, routing: RoutingSettings) -> float:
    return routing.kappa_base + min(seq, routing.kappa_cap) * routing.kappa_step


class SseOracle:
    """The SSE test of a decomposition, run on the real (or simulated) backends."""

    def __init__(
        self,
        backends: Mapping[Executor, ModelBackend],
        embedder: Embedder,
        routing: RoutingSettings | None = None,
    ) -> None:
        self.backends = backends
        self.embedder = embedder
        self.routing = routing or RoutingSettings()
        self.params = GenerationParams(max_new_tokens=128)

    def passes(self, request: str, history: Sequence[tuple[str, str]], seq: int, parts: Sequence[str]) -> bool:
        local = list(history)
        threshold = kappa(seq, self.routing)
        for part in parts:
            messages = render_step_messages(request, local, part, seq)
            slm = parse_step(self.backends[Executor.SLM].generate(messages, self.params).text)
            llm = parse_step(self.backends[Executor.LLM].generate(messages, self.params).text)
            slm_next = slm.next_subtask or slm.final_answer or ""
            llm_next = llm.next_subtask or llm.final_answer or ""
            if self.embedder.similarity(slm_next, llm_next) <= threshold:
                return False
            local.append((part, slm.result))
        return True


def sd_metrics(
    decompositions: Sequence[Sequence[str]], examples: Sequence[DecompositionExample], oracle: SseOracle
) -> Metrics:
    n = max(1, len(examples))
    passed = baseline = 0
    for parts, example in zip(decompositions, examples, strict=True):
        passed += oracle.passes(example.request, example.history, example.seq, parts)
        baseline += oracle.passes(example.request, example.history, example.seq, [example.subtask])
    return {
        "metric": "share_all_parts_pass",
        "share_all_parts_pass": passed / n,
        "baseline_share_all_parts_pass": baseline / n,
        "mean_parts": float(np.mean([len(p) for p in decompositions])) if decompositions else 0.0,
        "n_validation": len(examples),
    }


def headline(metrics: Mapping[str, Any]) -> tuple[str, float, float]:
    """(name, value, baseline value) of a metrics dict's headline metric."""
    name = str(metrics["metric"])
    return name, float(metrics[name]), float(metrics[f"baseline_{name}"])


def divergence_metrics(
    component: Any, examples: Sequence[Any], sp_cosine: Sequence[float], meta: Mapping[str, Any]
) -> Metrics:
    """Held-out AUCs of the divergence heads next to the paper's SP-cosine signal (module docstring)."""
    if not examples:
        return {"metric": "pre_auc", "pre_auc": 0.5, "baseline_pre_auc": 0.5, "n_validation": 0, "trusted": False}
    states = [e.state for e in examples]
    diverges = [not e.agree for e in examples]
    pre = component.agreement_many(states, sp_cosine)
    # Lower agreement (or a lower SP cosine) should mean "diverges": score with the negation.
    metrics: Metrics = {
        "metric": "pre_auc",
        "pre_auc": auc(diverges, list(-pre)) or 0.5,
        "baseline_pre_auc": auc(diverges, [-c for c in sp_cosine]) or 0.5,
        "divergence_rate": float(np.mean(diverges)),
        "n_validation": len(examples),
    }
    known = [i for i, e in enumerate(examples) if e.slm_correct is not None]
    wrong = [not examples[i].slm_correct for i in known]
    if known:
        metrics["pre_auc_step_wrong"] = auc(wrong, [-float(pre[i]) for i in known])
        metrics["baseline_pre_auc_step_wrong"] = auc(wrong, [-sp_cosine[i] for i in known])
    if getattr(component, "can_verify", False):
        rows = [i for i, e in enumerate(examples) if e.slm_confidence is not None]
        post = component.accept_many(
            [states[i] for i in rows], [sp_cosine[i] for i in rows], [examples[i].slm_confidence for i in rows]
        )
        wrong_result = [not examples[i].result_agree for i in rows]
        metrics["post_auc"] = auc(wrong_result, list(-post))
        metrics["logprob_auc"] = auc(wrong_result, [-float(examples[i].slm_confidence) for i in rows])
        scored = {i: float(p) for i, p in zip(rows, post, strict=True)}
        known_post = [i for i in known if i in scored]
        if known_post:
            metrics["post_auc_step_wrong"] = auc(
                [not examples[i].slm_correct for i in known_post], [-scored[i] for i in known_post]
            )
    metrics["trusted"] = metrics["pre_auc"] >= MIN_TRUSTED_AUC
    metrics["verify_trusted"] = (metrics.get("post_auc") or 0.0) >= MIN_TRUSTED_AUC
    return metrics
