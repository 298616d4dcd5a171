"""Per-adjacent-pair start estimators of the ladder: before a step runs, is the next
rung up needed?

The ladder's verify stage (``routing/ladder.py``) judges a rung's result after the rung ran it;
every step therefore pays for the cheapest rung first, even where that rung is predictably useless
(a step it gets wrong, or a rung priced above a better one). HERA's answer for two models is to
decide before execution (SP_SLM / SP_LLM / URC with a position-aware threshold). Here, per adjacent
pair (k, k+1):

* **The estimator** is a logistic head on the step's MiniLM embedding and its position (one-hot
  sequence id, as the divergence estimator's ``pre`` head), trained on the ladder profile
  (``training/ladder.py``: every rung answers every step of the top rung's chain, N × D calls per
  request, so per-pair labels cost no tree). Its label: rung k+1 was *needed* — rung k got the step
  wrong and rung k+1 right. Regularisation is picked by cross-validation grouped by request
  (``divergence.fit_head``), and the threshold search below only ever sees out-of-fold
  predictions, so a head that learned noise cannot buy itself a threshold.
* **The start rung** of a step is the cheapest rung judged sufficient: the first k whose pair says
  "not needed" (P(needed) below the pair's position-aware threshold ``base - step · min(seq,
  cap)``); if every pair says "needed", the top. Nothing is spent on the rungs skipped; after the
  start rung ran, the verify stage still climbs one rung at a time.
* **The thresholds** are fitted for the verify thresholds they will run with: on the profiled
  steps, the whole per-step ladder (start, then climb while the verify stage rejects) is replayed
  with each rung's measured cost and correctness, and the per-pair thresholds are chosen by
  coordinate descent to minimise cost with no more wrong steps than the ladder without start
  decisions. "Never skip" is always a candidate, so where the heads see nothing the ladder is
  today's; where a rung is dear and no better than the next (rented edge GPUs priced above a
  cheap cloud model), "always skip" is one too, and the estimators learn to drop the rung.

The fitted pairs, their thresholds and the verify thresholds they were fitted with are one JSON
artifact (:class:`LadderStarts`), which ``hera-ladder`` loads (``HERA_ROUTING__LADDER_ESTIMATORS``).
Every head is a few hundred weights and costs microseconds after the step's one SBERT call.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hera_router.estimators.divergence import FOLDS, LogisticHead, fit_head, group_folds

FORMAT = "hera-ladder-starts/1"
MAX_POSITION = 15
POSITION_CAP = 5
"""The threshold stops moving after this sequence id (HERA's κ cap)."""
STEP_GRID: tuple[float, ...] = (0.0, 0.02, 0.05)
"""Slopes of the position-aware threshold tried: later steps skip a cheap rung more readily."""
BASE_QUANTILES = 12
"""Base thresholds tried per pair: this many quantiles of its out-of-fold P(needed), plus "always
skip" (0) and "never skip" (inf)."""
PASSES = 3

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


class TextEncoder(Protocol):
    """What the start decision needs of a text encoder: the shared SBERT embedder
    (``estimators/similarity.py``) or :class:`HashedNgrams`."""

    def embed_many(self, texts: Sequence[str]) -> np.ndarray[Any, Any]: ...


NGRAMS = "hashed-ngrams"


class HashedNgrams:
    """Hashed word uni- and bigrams, L2-normalised (the HybridLLM baseline's text features,
    ``routing/hybridllm.py``): microseconds a text where MiniLM takes milliseconds, and the words
    that name a step's operation are what its difficulty hangs on in the simulator."""

    def __init__(self, buckets: int = 512) -> None:
        from hera_router.routing.hybridllm import Features

        self.buckets = buckets
        self._features = Features(buckets=buckets)

    @property
    def name(self) -> str:
        return f"{NGRAMS}-{self.buckets}"

    def embed_many(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        if not texts:
            return np.zeros((0, self.buckets))
        return np.stack([self._features.vector(text, 0)[: self.buckets] for text in texts])


def encoder_named(name: str, cache_size: int = 4096) -> TextEncoder:
    """The encoder an artifact was fitted with: ``all-minilm-l6-v2`` (the process's shared
    embedder; ``cache_size`` if this call loads it) or ``hashed-ngrams-<buckets>``."""
    from hera_router.estimators.similarity import DEFAULT_ENCODER, shared_embedder

    if name == DEFAULT_ENCODER:
        return shared_embedder(cache_size)
    prefix = f"{NGRAMS}-"
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return HashedNgrams(int(name[len(prefix) :]))
    raise ValueError(f"unknown ladder start encoder {name!r}: use {DEFAULT_ENCODER!r} or '{prefix}<buckets>'")


def pair_features(embeddings: np.ndarray[Any, Any], seqs: Sequence[int]) -> FloatArray:
    """[embedding of the step | one-hot position] per row."""
    positions = np.zeros((len(seqs), MAX_POSITION + 1))
    for row, seq in enumerate(seqs):
        positions[row, min(max(seq, 0), MAX_POSITION)] = 1.0
    return np.hstack([np.asarray(embeddings, dtype=np.float64).reshape(len(seqs), -1), positions])


@dataclass(frozen=True, slots=True)
class SkipRule:
    """Skip rung k (start higher) when P(rung k+1 needed) >= ``base - step · min(seq, cap)``."""

    base: float = math.inf
    step: float = 0.0
    cap: int = POSITION_CAP

    def threshold(self, seq: int) -> float:
        return self.base - self.step * min(max(seq, 0), self.cap)

    def thresholds(self, seqs: IntArray) -> FloatArray:
        result: FloatArray = self.base - self.step * np.minimum(np.maximum(seqs, 0), self.cap)
        return result

    def to_json(self) -> dict[str, Any]:
        return {"base": None if math.isinf(self.base) else self.base, "step": self.step, "cap": self.cap}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SkipRule:
        base = data.get("base")
        return cls(math.inf if base is None else float(base), float(data["step"]), int(data["cap"]))


NEVER = SkipRule()


@dataclass(frozen=True, slots=True)
class PairEstimator:
    """The pair (k, k+1): P(rung k+1 needed | step text, position) and when that means "skip k"."""

    head: LogisticHead
    rule: SkipRule = NEVER
    info: dict[str, Any] = field(default_factory=dict)

    def probability(self, features: FloatArray) -> FloatArray:
        return self.head.probability(features)


def start_rungs(probabilities: FloatArray, seqs: IntArray, rules: Sequence[SkipRule]) -> IntArray:
    """Per step, the first rung whose pair says "not needed" (``probabilities[:, k]`` below pair
    k's threshold); the top rung (``len(rules)``) if every pair says "needed"."""
    skip = np.column_stack([probabilities[:, k] >= rule.thresholds(seqs) for k, rule in enumerate(rules)])
    not_skipped = ~skip
    first = np.where(not_skipped.any(axis=1), not_skipped.argmax(axis=1), len(rules))
    return first.astype(np.int64)


def replay(
    starts: IntArray, confidence: FloatArray, correct: np.ndarray[Any, Any], cost: FloatArray, verify: Sequence[float]
) -> tuple[np.ndarray[Any, Any], FloatArray]:
    """The per-step ladder on profiled steps: start on ``starts``, climb one rung at a time while
    the rung's confidence is below its verify threshold (NaN: no logprob, climbs). Returns whether
    each step's kept result is right, and what the step cost."""
    n, rungs = confidence.shape
    rung = starts.copy()
    spent = np.zeros(n)
    active = np.ones(n, dtype=bool)
    rows = np.arange(n)
    by_rung = np.append(np.asarray(verify, dtype=np.float64), -math.inf)  # the top rung is never judged
    for _ in range(rungs):
        spent[active] += cost[rows[active], rung[active]]
        accepted = (rung >= rungs - 1) | (confidence[rows, rung] >= by_rung[rung])
        climbing = active & ~accepted
        active = climbing
        rung = np.where(climbing, rung + 1, rung)
        if not active.any():
            break
    return correct[rows, rung].astype(bool), spent


def fit_pair_head(
    features: FloatArray, labels: Sequence[bool], groups: Sequence[str]
) -> tuple[LogisticHead, dict[str, Any], FloatArray]:
    """A pair's head (``divergence.fit_head``: C by cross-validated log-loss grouped by request)
    and its out-of-fold predictions (each step scored by a head that never saw its request)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    head, info = fit_head(features, labels, groups)
    y = np.asarray(labels, dtype=bool)
    oof: FloatArray = np.full(len(y), float(y.mean()) if len(y) else 0.0)
    if not info.get("constant"):
        folds = group_folds(groups)
        for k in range(FOLDS):
            train = folds != k
            if not (folds == k).any() or y[train].all() or not y[train].any():
                continue
            model = LogisticRegression(C=info["C"], max_iter=3000).fit(features[train], y[train])
            oof[folds == k] = model.predict_proba(features[folds == k])[:, 1]
        info["oof_auc"] = float(roc_auc_score(y, oof)) if y.any() and not y.all() else None
    info["positives"] = int(y.sum())
    return head, info, oof


def fit_skip_rules(
    oof: FloatArray,
    seqs: IntArray,
    confidence: FloatArray,
    correct: np.ndarray[Any, Any],
    cost: FloatArray,
    verify: Sequence[float],
    *,
    slack: int = 0,
) -> tuple[list[SkipRule], dict[str, Any]]:
    """Per pair, the position-aware threshold (coordinate descent over pairs, ``PASSES`` passes)
    that minimises the replayed per-step cost with at most ``slack`` more wrong steps than the
    ladder that always starts at the bottom. Starts from "never skip" and keeps it unless a rule
    is strictly cheaper."""
    pairs = oof.shape[1]

    def measure(candidate: Sequence[SkipRule]) -> tuple[int, float]:
        right, spent = replay(start_rungs(oof, seqs, candidate), confidence, correct, cost, verify)
        return int((~right).sum()), float(spent.sum())

    candidates: list[list[SkipRule]] = []
    for k in range(pairs):
        quantiles = np.quantile(oof[:, k], np.linspace(0.0, 1.0, BASE_QUANTILES + 2)[1:-1]) if len(oof) else ()
        bases = sorted({0.0, *(float(q) for q in quantiles)})
        candidates.append([SkipRule(base, step) for base in bases for step in STEP_GRID] + [NEVER])
    base_wrong, base_cost = measure([NEVER] * pairs)

    def descend(rules: list[SkipRule]) -> tuple[list[SkipRule], float]:
        wrong, best_cost = measure(rules)
        if wrong > base_wrong + slack:
            return [NEVER] * pairs, base_cost
        for _ in range(PASSES):
            changed = False
            for k in range(pairs):
                for rule in candidates[k]:
                    trial = [*rules[:k], rule, *rules[k + 1 :]]
                    wrong, spent = measure(trial)
                    if wrong <= base_wrong + slack and spent < best_cost - 1e-15:
                        rules, best_cost, changed = trial, spent, True
            if not changed:
                break
        return rules, best_cost

    # One pair at a time cannot see that skipping two dear rungs pays where skipping one does
    # not (tiny then mid, both priced above the next model up): the descent also starts from
    # every "always start on rung j", and the cheapest end wins (ties: fewest rungs skipped).
    origins = [[*(SkipRule(0.0),) * j, *(NEVER,) * (pairs - j)] for j in range(pairs + 1)]
    rules, best_cost = min((descend(origin) for origin in origins), key=lambda end: end[1])
    final_wrong, _ = measure(rules)
    starts = start_rungs(oof, seqs, rules)
    info = {
        "steps": len(seqs),
        "replayed_cost_without_starts": base_cost,
        "replayed_cost": best_cost,
        "replayed_wrong_without_starts": base_wrong,
        "replayed_wrong": final_wrong,
        "start_share": [float((starts == r).mean()) if len(starts) else 0.0 for r in range(pairs + 1)],
    }
    return rules, info


@dataclass(frozen=True, slots=True)
class LadderStarts:
    """The fitted start decision of a ladder: one :class:`PairEstimator` per adjacent pair and the
    verify thresholds they were fitted with (the artifact ``hera-ladder`` loads)."""

    names: tuple[str, ...]
    verify_thresholds: tuple[float, ...]
    pairs: tuple[PairEstimator, ...]
    encoder: str = "all-minilm-l6-v2"
    """What embeds a step's text for the heads (:func:`encoder_named`)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) < 2 or len(self.pairs) != len(self.names) - 1:
            raise ValueError(f"{len(self.names)} rungs need {len(self.names) - 1} pair estimators")
        if len(self.verify_thresholds) != len(self.pairs):
            raise ValueError(f"{len(self.names)} rungs need {len(self.pairs)} verify thresholds")

    @property
    def top(self) -> int:
        return len(self.names) - 1

    @property
    def version(self) -> str:
        """What decisions record: the rungs, and a digest of the fitted weights and thresholds."""
        digest = hashlib.sha256(json.dumps(self.to_json()["pairs"], sort_keys=True).encode()).hexdigest()[:10]
        return f"{'>'.join(self.names)}@{digest}"

    def probabilities(self, embeddings: np.ndarray[Any, Any], seqs: Sequence[int]) -> FloatArray:
        """P(rung k+1 needed) per step (rows) and pair (columns)."""
        features = pair_features(embeddings, seqs)
        return np.column_stack([pair.probability(features) for pair in self.pairs])

    def start_many(self, embeddings: np.ndarray[Any, Any], seqs: Sequence[int]) -> tuple[IntArray, FloatArray]:
        probabilities = self.probabilities(embeddings, seqs)
        rules = [pair.rule for pair in self.pairs]
        return start_rungs(probabilities, np.asarray(seqs, dtype=np.int64), rules), probabilities

    def start(self, embedding: np.ndarray[Any, Any], seq: int) -> tuple[int, list[float]]:
        """The rung one step starts on, and each pair's P(needed)."""
        starts, probabilities = self.start_many(np.asarray(embedding)[None, :], [seq])
        return int(starts[0]), [float(p) for p in probabilities[0]]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "names": list(self.names),
            "encoder": self.encoder,
            "verify_thresholds": [None if math.isinf(t) else t for t in self.verify_thresholds],
            "pairs": [
                {"head": pair.head.to_json(), "rule": pair.rule.to_json(), "info": pair.info} for pair in self.pairs
            ],
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LadderStarts:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a ladder start artifact (format {data.get('format')!r}, expected {FORMAT!r})")
        pairs = tuple(
            PairEstimator(LogisticHead.from_json(p["head"]), SkipRule.from_json(p["rule"]), dict(p.get("info", {})))
            for p in data["pairs"]
        )
        verify = tuple(math.inf if t is None else float(t) for t in data["verify_thresholds"])
        return cls(tuple(data["names"]), verify, pairs, str(data["encoder"]), dict(data.get("meta", {})))

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), default=str) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> LadderStarts:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the ladder start artifact {path}: {exc}") from None
        return cls.from_json(data)


@dataclass(frozen=True, slots=True)
class PairHeads:
    """The heads of every adjacent pair and their out-of-fold predictions on the profile (fitted
    once per profile; the thresholds are fitted per set of verify thresholds)."""

    heads: tuple[LogisticHead, ...]
    infos: tuple[dict[str, Any], ...]
    oof: FloatArray


def fit_pair_heads(
    embeddings: np.ndarray[Any, Any], seqs: Sequence[int], groups: Sequence[str], correct: np.ndarray[Any, Any]
) -> PairHeads:
    """Per adjacent pair (k, k+1), P(rung k wrong and rung k+1 right) from the step's text and
    position. ``correct[i, k]``: rung k's result at profiled step i was right."""
    features = pair_features(embeddings, seqs)
    right = np.asarray(correct, dtype=bool)
    heads, infos, oofs = [], [], []
    for k in range(right.shape[1] - 1):
        labels = [bool(v) for v in (~right[:, k] & right[:, k + 1])]
        head, info, oof = fit_pair_head(features, labels, groups)
        heads.append(head)
        infos.append(info)
        oofs.append(oof)
    return PairHeads(tuple(heads), tuple(infos), np.column_stack(oofs))


def fit_ladder_starts(
    heads: PairHeads,
    names: Sequence[str],
    seqs: Sequence[int],
    confidence: FloatArray,
    correct: np.ndarray[Any, Any],
    cost: FloatArray,
    verify: Sequence[float],
    encoder: str,
    *,
    tolerance: float = 0.0,
    **meta: Any,
) -> LadderStarts:
    """The start decision for a ladder with these verify thresholds (see :func:`fit_skip_rules`):
    at tolerance δ the start decisions may add δ × (profiled steps) wrong steps to the ladder's
    own, the same per-step δ its verify thresholds were fitted at."""
    rules, info = fit_skip_rules(
        heads.oof,
        np.asarray(seqs, dtype=np.int64),
        confidence,
        np.asarray(correct, dtype=bool),
        cost,
        verify,
        slack=round(tolerance * len(seqs)),
    )
    pairs = tuple(
        PairEstimator(head, rule, dict(pair_info))
        for head, rule, pair_info in zip(heads.heads, rules, heads.infos, strict=True)
    )
    return LadderStarts(tuple(names), tuple(verify), pairs, encoder, {**meta, "tolerance": tolerance, "fit": info})
