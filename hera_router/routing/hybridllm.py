"""The HybridLLM baseline (Ding et al., ICLR 2024; the HERA paper, §7) applied to each subtask.

A classifier scores a subtask *before* it runs: the probability that the SLM's answer is no worse
than the LLM's, relaxed by t. The step goes to the SLM when the score reaches a threshold tuned on
validation data for a target quality drop. Steps are independent: the classifier sees the subtask
text and its position, never the chain (the weakness the HERA paper measures).

Training, as in the paper (its ``r_trans`` router):

* labels are soft: Pr[q(SLM) ≥ q(LLM) − t], estimated from several sampled outcomes per model
  (:func:`soft_label`); t is chosen on a grid to maximise the mean pairwise difference between the
  labels (:func:`choose_relaxation`), which keeps labels from collapsing to 0 when the LLM is much
  stronger;
* the router is trained with cross-entropy on the soft labels (:meth:`SubtaskClassifier.fit`);
* the threshold is the lowest score at which the routed validation set keeps at least
  (1 − max drop) of the All-LLM quality (:func:`tune_threshold`).

Deviation, stated: the paper fine-tunes DeBERTa-v3-large. This router is a logistic regression on
hashed word uni- and bigrams plus position features, trained with numpy, because a policy is pure
and loads in microseconds; :class:`Features` is the one place to swap in sentence embeddings.

Data: :class:`QualitySamples` (subtask text, seq, sampled qualities per model) is the interface;
:func:`samples_from_tree` derives it from a profiled tree (``routing/oracle.py``), taking the
correctness of the leaves under a node's SLM child and LLM child as the two models' samples.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, PolicyBase, RoutingContext
from hera_router.routing.estimators import Estimators
from hera_router.routing.oracle import TreeNode, assignments

Matrix = npt.NDArray[np.float64]

RELAXATION_GRID: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True, slots=True)
class QualitySamples:
    """Sampled quality of each model's outcome on one subtask (e.g. 10 samples each, or leaves)."""

    text: str
    seq: int
    slm: tuple[float, ...]
    llm: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class LabelledSubtask:
    """One training example: the subtask, its position, the soft label Pr[q(S) ≥ q(L) − t]."""

    text: str
    seq: int
    label: float


def soft_label(sample: QualitySamples, relaxation: float) -> float:
    """Pr[q(SLM) ≥ q(LLM) − t] over every (SLM sample, LLM sample) pair."""
    if not sample.slm or not sample.llm:
        raise ValueError(f"subtask {sample.text!r} needs at least one quality sample per model")
    hits = sum(s >= q - relaxation for s in sample.slm for q in sample.llm)
    return hits / (len(sample.slm) * len(sample.llm))


def label_spread(labels: Sequence[float]) -> float:
    """Mean absolute difference over all pairs of labels (Ding et al.'s criterion for t)."""
    pairs = list(combinations(labels, 2))
    return sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else 0.0


def choose_relaxation(samples: Sequence[QualitySamples], grid: Sequence[float] = RELAXATION_GRID) -> float:
    """The t of ``grid`` whose labels differ most between subtasks (ties: the smallest t)."""
    return max(grid, key=lambda t: (label_spread([soft_label(s, t) for s in samples]), -t))


def label(samples: Iterable[QualitySamples], relaxation: float) -> list[LabelledSubtask]:
    return [LabelledSubtask(s.text, s.seq, soft_label(s, relaxation)) for s in samples]


_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Features:
    """Hashed word uni/bigrams (stable blake2b buckets, not Python's salted ``hash``) and position."""

    buckets: int = 2048
    max_position: int = 15

    @property
    def size(self) -> int:
        return self.buckets + self.max_position + 2

    def vector(self, text: str, seq: int) -> Matrix:
        out = np.zeros(self.size)
        words = _WORD.findall(text.lower())
        for gram in [*words, *(f"{a} {b}" for a, b in pairwise(words))]:
            digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
            out[int.from_bytes(digest, "big") % self.buckets] += 1.0
        norm = np.linalg.norm(out[: self.buckets])
        if norm:
            out[: self.buckets] /= norm
        out[self.buckets + min(seq, self.max_position)] = 1.0  # position one-hot, late steps share a bucket
        out[-1] = seq / self.max_position  # and as a number, so unseen positions still extrapolate
        return out

    def matrix(self, items: Sequence[tuple[str, int]]) -> Matrix:
        return np.stack([self.vector(text, seq) for text, seq in items]) if items else np.zeros((0, self.size))


def _sigmoid(x: Matrix) -> Matrix:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0))), dtype=np.float64)


@dataclass
class SubtaskClassifier:
    """Logistic regression on :class:`Features`: score = Pr[the SLM is good enough for the subtask]."""

    features: Features
    weights: Matrix
    bias: float

    @classmethod
    def fit(
        cls,
        data: Sequence[LabelledSubtask],
        features: Features | None = None,
        *,
        epochs: int = 300,
        learning_rate: float = 0.5,
        l2: float = 1e-3,
    ) -> SubtaskClassifier:
        """Full-batch gradient descent on soft-label cross-entropy (deterministic: no sampling)."""
        if not data:
            raise ValueError("cannot train the HybridLLM router on an empty dataset")
        features = features or Features()
        x = features.matrix([(d.text, d.seq) for d in data])
        y = np.array([d.label for d in data])
        w = np.zeros(features.size)
        # Start from the base rate so a feature-poor dataset still predicts its mean label.
        mean = float(np.clip(y.mean(), 1e-4, 1 - 1e-4))
        b = math.log(mean / (1 - mean))
        for _ in range(epochs):
            error = _sigmoid(x @ w + b) - y
            w -= learning_rate * (x.T @ error / len(y) + l2 * w)
            b -= learning_rate * float(error.mean())
        return cls(features, w, b)

    def score(self, text: str, seq: int) -> float:
        return float(_sigmoid(np.array([self.features.vector(text, seq) @ self.weights + self.bias]))[0])


@dataclass(frozen=True, slots=True)
class ValidationSubtask:
    """A held-out subtask with each model's mean quality on it."""

    text: str
    seq: int
    slm_quality: float
    llm_quality: float

    @classmethod
    def of(cls, sample: QualitySamples) -> ValidationSubtask:
        return cls(sample.text, sample.seq, sum(sample.slm) / len(sample.slm), sum(sample.llm) / len(sample.llm))


def tune_threshold(
    classifier: SubtaskClassifier, validation: Sequence[ValidationSubtask], max_quality_drop: float
) -> float:
    """The lowest threshold (most SLM) whose routed quality is ≥ (1 − max drop) × All-LLM quality.

    A subtask goes to the SLM when its score ≥ the threshold; candidates are the validation scores
    themselves plus one above them all (nothing on the SLM, always feasible).
    """
    if not validation:
        raise ValueError("cannot tune the HybridLLM threshold without validation subtasks")
    scores = np.array([classifier.score(v.text, v.seq) for v in validation])
    slm = np.array([v.slm_quality for v in validation])
    llm = np.array([v.llm_quality for v in validation])
    floor = (1.0 - max_quality_drop) * float(llm.mean())
    for threshold in sorted({*scores.tolist(), math.nextafter(float(scores.max()), math.inf)}):
        routed = np.where(scores >= threshold, slm, llm)
        if float(routed.mean()) >= floor - 1e-12:
            return float(threshold)
    raise AssertionError("unreachable: the threshold above every score routes everything to the LLM")


@dataclass
class HybridRouter:
    """What training produces and the policy loads: the classifier, its threshold and its t."""

    classifier: SubtaskClassifier
    threshold: float
    relaxation: float

    def to_json(self) -> dict[str, Any]:
        f = self.classifier.features
        return {
            "features": {"buckets": f.buckets, "max_position": f.max_position},
            "weights": self.classifier.weights.tolist(),
            "bias": self.classifier.bias,
            "threshold": self.threshold,
            "relaxation": self.relaxation,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HybridRouter:
        features = Features(**raw["features"])
        classifier = SubtaskClassifier(features, np.array(raw["weights"], dtype=np.float64), float(raw["bias"]))
        return cls(classifier, float(raw["threshold"]), float(raw["relaxation"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> HybridRouter:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def train_router(
    train: Sequence[QualitySamples],
    validation: Sequence[QualitySamples],
    max_quality_drop: float = 0.05,
    grid: Sequence[float] = RELAXATION_GRID,
) -> HybridRouter:
    """Choose t, label, fit, tune the threshold: the whole offline step."""
    relaxation = choose_relaxation(train, grid)
    classifier = SubtaskClassifier.fit(label(train, relaxation))
    threshold = tune_threshold(classifier, [ValidationSubtask.of(v) for v in validation], max_quality_drop)
    return HybridRouter(classifier, threshold, relaxation)


def samples_from_tree(root: TreeNode) -> list[QualitySamples]:
    """Per node with both children: the correctness of the finished leaves under each child.

    The leaves below a child are the outcomes of running the node on that model followed by every
    continuation the tree holds, the subtask-level analogue of Ding et al.'s sampled responses.
    """
    out: list[QualitySamples] = []
    stack: list[tuple[TreeNode, int]] = [(root, 0)]
    while stack:
        node, seq = stack.pop()
        slm, llm = node.children.get(Executor.SLM), node.children.get(Executor.LLM)
        if slm is not None and llm is not None:
            slm_q = tuple(float(a.correct) for a in assignments(slm)) or _leaf_quality(slm)
            llm_q = tuple(float(a.correct) for a in assignments(llm)) or _leaf_quality(llm)
            if slm_q and llm_q:
                out.append(QualitySamples(node.text, seq, slm_q, llm_q))
        stack.extend((child, seq + 1) for child in node.children.values())
    return out


def _leaf_quality(node: TreeNode) -> tuple[float, ...]:
    # A child that is itself a finished leaf: ``assignments`` yields nothing for a zero-step path.
    return (float(node.correct),) if not node.children and node.correct is not None else ()


# -- the policy ----------------------------------------------------------------------------------


class MissingRouterModelError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "policy 'hybridllm' needs a trained router: train one with "
            "hera_router.routing.hybridllm.train_router, save it, and set HERA_ROUTING__HYBRIDLLM_MODEL_PATH"
        )


class HybridLLMPolicy(PolicyBase):
    """Each step on the SLM when the router's score reaches its tuned threshold."""

    name = "hybridllm"

    def __init__(self, settings: RoutingSettings) -> None:
        self.model_path = settings.hybridllm_model_path
        self._router: HybridRouter | None = None

    def _load(self) -> HybridRouter:
        if self._router is None:
            if self.model_path is None or not self.model_path.is_file():
                raise MissingRouterModelError
            self._router = HybridRouter.load(self.model_path)
        return self._router

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        started = time.perf_counter()
        router = self._load()
        score = router.classifier.score(context.current, context.seq)
        return Decision(
            executor=Executor.SLM if score >= router.threshold else Executor.LLM,
            branch=self.name,
            policy=self.name,
            scores={"score": score, "threshold": router.threshold},
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )
