"""Stub estimators for routing tests: plain classes that satisfy the estimator protocols.

The LLM predictor always predicts the same embedding (``BASE``); the SLM predictor predicts, for its
j-th step, a unit vector whose cosine with ``BASE`` is the j-th number of a script. So the j-th
SLM/LLM pair of a roll-out has exactly the scripted similarity, which is what SSE (j = 1), SLE
(j = look-ahead, against the LLM's first) and CD (every j) compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hera_router.routing.estimators import ChainState, Estimators, Vector

BASE: Vector = np.array([1.0, 0.0], dtype=np.float32)


def with_similarity(similarity: float) -> Vector:
    """A unit vector whose cosine with ``BASE`` is ``similarity``."""
    return np.array([similarity, math.sqrt(max(0.0, 1.0 - similarity**2))], dtype=np.float32)


@dataclass
class FixedScorer:
    value: float
    version: str = "urc-test"
    calls: int = 0

    def score(self, request: str) -> float:
        self.calls += 1
        return self.value


@dataclass
class LLMPredictor:
    version: str = "sp-llm-test"
    calls: list[int] = field(default_factory=list)

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        self.calls.append(steps)
        return [BASE] * steps


@dataclass
class SLMPredictor:
    """Scripted similarities per step; ``script`` maps the current subtask text to its own script."""

    default: Sequence[float] = ()
    script: Mapping[str, Sequence[float]] = field(default_factory=dict)
    by_state: Callable[[ChainState], Sequence[float] | None] | None = None
    version: str = "sp-slm-test"
    calls: list[int] = field(default_factory=list)

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        self.calls.append(steps)
        sims = self.by_state(state) if self.by_state is not None else None
        if sims is None:
            sims = self.script.get(state.current, self.default)
        padded = [*sims, *[0.0] * steps][:steps]  # unscripted steps are orthogonal: never similar
        return [with_similarity(s) for s in padded]


@dataclass
class FixedDistance:
    value: int | None
    version: str = "dp-test"
    calls: int = 0

    def predict(self, subtask: str, seq: int) -> int | None:
        self.calls += 1
        return self.value


@dataclass
class FixedDecomposer:
    parts: Sequence[str] = ()
    version: str = "sd-test"
    calls: int = 0

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        self.calls += 1
        return list(self.parts)


def estimators(
    *,
    urc: float = 0.0,
    slm: Sequence[float] = (),
    parts: Mapping[str, Sequence[float]] | None = None,
    d: int | None = None,
) -> Estimators:
    """A bundle: URC score, the SLM script of the current step, DP's d, SD parts with their scripts."""
    parts = parts or {}
    return Estimators(
        urc=FixedScorer(urc),
        sp_slm=SLMPredictor(default=slm, script=parts),
        sp_llm=LLMPredictor(),
        dp=FixedDistance(d),
        sd=FixedDecomposer(list(parts)),
        versions={
            "urc": "urc-test",
            "sp_slm": "sp-slm-test",
            "sp_llm": "sp-llm-test",
            "dp": "dp-test",
            "sd": "sd-test",
        },
    )


@dataclass
class StubDivergence:
    """The divergence estimator: P(agree) before execution is ``agree``; after, ``accept`` when the
    SLM's mean token logprob is above ``min_logprob``, else 0.1."""

    agree: float = 0.9
    accept: float = 0.95
    min_logprob: float = -0.5
    can_verify: bool = True
    version: str = "dv-test"
    seen: list[tuple[int, float | None]] | None = None

    def agreement_vec(self, current: Vector, seq: int, sp_cosine: float) -> float:
        return self.agree

    def accept_vec(self, current: Vector, seq: int, sp_cosine: float, confidence: float | None) -> float:
        if self.seen is not None:
            self.seen.append((seq, confidence))
        return self.accept if confidence is not None and confidence > self.min_logprob else 0.1
