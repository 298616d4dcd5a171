"""DV, the divergence estimator: will the SLM's chain part from the LLM's at this step?

Why it exists. The paper's SSE compares the SBERT embeddings of the next subtasks SP_SLM and
SP_LLM predict. Trained on a few hundred profiled requests, both predictors learn the subtask
*template* ("Find the mother of …", "Add … to …") and not the entity or number that differs when
a model errs, so the two predictions agree at nearly every step (measured on the simulated world:
cosine above κ on 90-100 % of steps, AUC 0.53 for "this SLM step goes wrong"). What differs
between two chains is their *content* — the entity a lookup found, the number a step computed —
and that is exactly what a sentence embedding averages away.

So the comparison is learned, on the profiled trees themselves: at every node both models ran the
same step, and the label is whether the subtask (or final answer) each wrote next names the same
content (:func:`hera_router.training.labels.same_content`: the numbers and proper names in it).
Two logistic heads share one feature map:

* ``pre`` — before execution: the SBERT embedding of the step, its position (one-hot sequence id),
  and the cosine of the SP_SLM / SP_LLM predictions (the paper's signal, kept as a feature). Its
  output, P(the two next subtasks agree), is the similarity SSE, SLE, CD and the SD parts compare
  with the position-aware κ: the paper's mechanism, with a similarity that can see content.
* ``post`` — after the SLM ran the step: the same features plus the SLM's mean token logprob
  (and its square), trained on whether the SLM's *result* for the step names the same content as
  the LLM's (a logprob speaks about the tokens just written, not about the detours a chain may
  take next). Its output is what the verify stage compares with its threshold.

Both are a few hundred weights (a JSON file), evaluate in microseconds after the one SBERT call
the step needs anyway, and are regularised by cross-validation grouped by request, because the
profiles are small. A head that does not beat chance on held-out requests is reported as such and
the calibration (``training/calibration.py``) turns the stage off instead of trusting it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.estimators.similarity import DEFAULT_ENCODER, EMBEDDING_DIM, Embedder
from hera_router.routing.estimators import ChainState, Vector

VARIANT = "logistic"
HEADS_FILE = "heads.json"
MAX_POSITION = 15
C_GRID = (0.03, 0.1, 0.3, 1.0)
"""Inverse regularisation strengths tried; the best grouped cross-validated log-loss wins."""
FOLDS = 4

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class DivergenceExample:
    """One profiled node where both models ran the step."""

    request_key: str
    state: ChainState
    agree: bool
    """Whether the SLM's next subtask (or answer) names the same content as the LLM's (what the pre
    head predicts: do the two chains go on alike?)."""
    slm_confidence: float | None
    """Mean token logprob of the SLM's call at this node."""
    result_agree: bool = True
    """Whether the SLM's *result* for the step names the same content as the LLM's (what the post
    head predicts: is the result the SLM just gave the one the LLM would have given?)."""
    slm_correct: bool | None = None
    """Ground truth of the SLM's result (simulator only; used for reporting, never for training)."""


def _positions(seqs: Sequence[int]) -> FloatArray:
    out = np.zeros((len(seqs), MAX_POSITION + 1))
    for row, seq in enumerate(seqs):
        out[row, min(max(seq, 0), MAX_POSITION)] = 1.0
    return out


def pre_features(current: np.ndarray[Any, Any], seqs: Sequence[int], sp_cosine: Sequence[float]) -> FloatArray:
    """[SBERT(step) | one-hot position | cos(SP_SLM, SP_LLM)] per row."""
    cos = np.asarray(sp_cosine, dtype=np.float64)[:, None]
    return np.hstack([np.asarray(current, dtype=np.float64), _positions(seqs), cos])


def post_features(pre: FloatArray, confidence: Sequence[float | None]) -> FloatArray:
    """Pre features plus the SLM's mean token logprob, its square and a missing flag."""
    values = np.array([0.0 if c is None else float(c) for c in confidence])
    missing = np.array([1.0 if c is None else 0.0 for c in confidence])
    return np.hstack([pre, values[:, None], (values**2)[:, None], missing[:, None]])


@dataclass(frozen=True, slots=True)
class LogisticHead:
    weights: FloatArray
    bias: float

    def probability(self, features: FloatArray) -> FloatArray:
        z = features @ self.weights + self.bias
        result: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        return result

    def to_json(self) -> dict[str, Any]:
        return {"weights": [round(float(w), 8) for w in self.weights], "bias": float(self.bias)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogisticHead:
        return cls(np.asarray(data["weights"], dtype=np.float64), float(data["bias"]))


def group_folds(groups: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    order = sorted(set(groups))
    index = {g: i % FOLDS for i, g in enumerate(order)}
    return np.array([index[g] for g in groups], dtype=np.int64)


def fit_head(
    features: FloatArray, labels: Sequence[bool], groups: Sequence[str]
) -> tuple[LogisticHead, dict[str, Any]]:
    """A logistic head for P(agree), C chosen by grouped cross-validated log-loss.

    Degenerate labels (all agree or all diverge) give the constant head at the base rate: there
    is nothing to learn, and the metrics say so (``constant``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(labels, dtype=bool)
    rate = float(y.mean()) if len(y) else 0.5
    if len(y) == 0 or y.all() or not y.any():
        bias = math.log(max(rate, 1e-6) / max(1 - rate, 1e-6))
        return LogisticHead(np.zeros(features.shape[1]), bias), {"constant": True, "base_rate": rate}
    folds = group_folds(groups)
    best: tuple[float, float] | None = None
    scores: dict[str, float] = {}
    usable = [k for k in range(FOLDS) if (folds == k).any() and y[folds != k].any() and not y[folds != k].all()]
    for c in C_GRID:
        predicted = np.full(len(y), rate)
        for k in usable:
            model = LogisticRegression(C=c, max_iter=3000).fit(features[folds != k], y[folds != k])
            predicted[folds == k] = model.predict_proba(features[folds == k])[:, 1]
        loss = float(log_loss(y, np.clip(predicted, 1e-6, 1 - 1e-6), labels=[False, True]))
        scores[str(c)] = loss
        if best is None or loss < best[0]:
            best = (loss, c)
    assert best is not None
    model = LogisticRegression(C=best[1], max_iter=3000).fit(features, y)
    head = LogisticHead(model.coef_[0].astype(np.float64), float(model.intercept_[0]))
    in_sample = float(roc_auc_score(y, head.probability(features)))
    return head, {"constant": False, "base_rate": rate, "C": best[1], "cv_log_loss": scores, "train_auc": in_sample}


class DivergenceEstimator:
    """The trained pre and post heads (see the module docstring)."""

    def __init__(self, pre: LogisticHead, post: LogisticHead | None, embedder: Embedder, version: str) -> None:
        self.pre_head = pre
        self.post_head = post
        self.embedder = embedder
        self.version = version

    @property
    def can_verify(self) -> bool:
        """Whether a post head exists (profiles without logprobs train none)."""
        return self.post_head is not None

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder) -> DivergenceEstimator:
        heads = json.loads((folder / HEADS_FILE).read_text(encoding="utf-8"))
        post = LogisticHead.from_json(heads["post"]) if heads.get("post") else None
        return cls(LogisticHead.from_json(heads["pre"]), post, embedder, version)

    def _pre(self, states: Sequence[ChainState], sp_cosine: Sequence[float]) -> FloatArray:
        current = self.embedder.embed_many([s.current for s in states])
        return pre_features(current, [s.seq for s in states], sp_cosine)

    def agreement(self, state: ChainState, slm_next: Vector, llm_next: Vector) -> float:
        """Before execution: P(the SLM's next subtask names what the LLM's would)."""
        return float(self.agreement_many([state], [_cos(slm_next, llm_next)])[0])

    def agreement_many(self, states: Sequence[ChainState], sp_cosine: Sequence[float]) -> FloatArray:
        return self.pre_head.probability(self._pre(states, sp_cosine))

    def accept(self, state: ChainState, sp_cosine: float, confidence: float | None) -> float:
        """After the SLM ran the step: P(its result agrees with what the LLM would have given)."""
        return float(self.accept_many([state], [sp_cosine], [confidence])[0])

    def agreement_vec(self, current: Vector, seq: int, sp_cosine: float) -> float:
        return float(self.pre_head.probability(pre_features(current[None, :], [seq], [sp_cosine]))[0])

    def accept_vec(self, current: Vector, seq: int, sp_cosine: float, confidence: float | None) -> float:
        if self.post_head is None:
            raise RuntimeError("this divergence estimator has no post head (its profile had no logprobs)")
        features = post_features(pre_features(current[None, :], [seq], [sp_cosine]), [confidence])
        return float(self.post_head.probability(features)[0])

    def accept_many(
        self, states: Sequence[ChainState], sp_cosine: Sequence[float], confidence: Sequence[float | None]
    ) -> FloatArray:
        if self.post_head is None:
            raise RuntimeError("this divergence estimator has no post head (its profile had no logprobs)")
        return self.post_head.probability(post_features(self._pre(states, sp_cosine), confidence))


def _cos(a: Vector, b: Vector) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator else 0.0


def train_divergence(
    examples: Sequence[DivergenceExample],
    sp_cosine: Sequence[float],
    embedder: Embedder,
    *,
    out_dir: Path,
) -> dict[str, Any]:
    """Fit both heads on ``examples`` (``sp_cosine[i]``: cos of the SP predictions at example i)."""
    if not examples:
        raise ValueError("no profiled node has both an SLM and an LLM child: profile more requests")
    groups = [e.request_key for e in examples]
    labels = [e.agree for e in examples]
    current = embedder.embed_many([e.state.current for e in examples])
    pre = pre_features(current, [e.state.seq for e in examples], sp_cosine)
    pre_head, pre_info = fit_head(pre, labels, groups)
    with_confidence = [i for i, e in enumerate(examples) if e.slm_confidence is not None]
    post_head, post_info = None, {"trained": False, "reason": "the profile holds no SLM logprobs"}
    if len(with_confidence) >= max(20, len(examples) // 2):
        rows = np.asarray(with_confidence)
        post = post_features(pre[rows], [examples[i].slm_confidence for i in with_confidence])
        results = [examples[i].result_agree for i in with_confidence]
        post_head, post_info = fit_head(post, results, [groups[i] for i in rows])
        post_info["trained"] = True
    heads = {"pre": pre_head.to_json(), "post": post_head.to_json() if post_head is not None else None}
    (out_dir / HEADS_FILE).write_text(json.dumps(heads), encoding="utf-8")
    return {
        "variant": VARIANT,
        "backbone": DEFAULT_ENCODER,
        "features": {"embedding": EMBEDDING_DIM, "positions": MAX_POSITION + 1},
        "pre": pre_info,
        "post": post_info,
        "n_examples": len(examples),
    }
