"""Estimators that remember their answers, for evaluations that ask the same questions many times.

A replay visits the same tree nodes under every policy, ablation and threshold of a sweep, and the
estimators' answers depend on the node, never on the thresholds: caching them turns a 35-point
sweep from 35 estimator passes into one. The wrappers keep the time each answer first took
(:attr:`CachingEstimators.saved_s` grows by it on every hit), so a replay can still report the
decision time an uncached router would have spent.

The roll-out cache serves a shorter roll from a longer one (a roll is a chain of one-step
predictions, so its prefix does not depend on how far it goes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hera_router.routing.estimators import (
    ChainState,
    Decomposer,
    DistancePredictor,
    Estimators,
    NextSubtaskPredictor,
    RequestScorer,
    Vector,
)

T = TypeVar("T")


@dataclass
class _Memo:
    """Shared cache bookkeeping: values with the seconds they took, and the seconds hits saved."""

    values: dict[Hashable, tuple[Any, float]] = field(default_factory=dict)
    saved_s: float = 0.0
    hits: int = 0
    misses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self.lock:
            found = self.values.get(key)
            if found is not None:
                self.hits += 1
                self.saved_s += found[1]
                return found[0]  # type: ignore[no-any-return]
        started = time.perf_counter()
        value = compute()
        with self.lock:
            self.misses += 1
            self.values[key] = (value, time.perf_counter() - started)
        return value


def _state_key(state: ChainState) -> tuple[str, tuple[tuple[str, str], ...], str, int]:
    return (state.request, tuple((s, r) for s, r in state.history), state.current, state.seq)


class _CachedScorer:
    def __init__(self, inner: RequestScorer, memo: _Memo) -> None:
        self.inner, self.memo, self.version = inner, memo, inner.version

    def score(self, request: str) -> float:
        return self.memo.get(("urc", request), lambda: float(self.inner.score(request)))


class _CachedPredictor:
    def __init__(self, inner: NextSubtaskPredictor, memo: _Memo, role: str) -> None:
        self.inner, self.memo, self.role, self.version = inner, memo, role, inner.version
        self.longest: dict[Hashable, int] = {}

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        base = (self.role, _state_key(state))
        with self.memo.lock:
            longest = self.longest.get(base, 0)
        if longest >= steps:
            predictions: list[Vector] = self.memo.get((*base, longest), lambda: [])
            return predictions[:steps]
        predictions = self.memo.get((*base, steps), lambda: list(self.inner.roll(state, steps)))
        with self.memo.lock:
            self.longest[base] = max(self.longest.get(base, 0), steps)
        return predictions


class _CachedDistance:
    def __init__(self, inner: DistancePredictor, memo: _Memo) -> None:
        self.inner, self.memo, self.version = inner, memo, inner.version

    def predict(self, subtask: str, seq: int) -> int | None:
        return self.memo.get(("dp", subtask, seq), lambda: self.inner.predict(subtask, seq))


class _CachedDecomposer:
    def __init__(self, inner: Decomposer, memo: _Memo) -> None:
        self.inner, self.memo, self.version = inner, memo, inner.version

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        parts = self.memo.get(
            ("sd", request, subtask, expected_next),
            lambda: tuple(self.inner.decompose(request, subtask, expected_next)),
        )
        return list(parts)


class CachingEstimators:
    """An :class:`Estimators` bundle over another, answering repeated questions from memory."""

    def __init__(self, inner: Estimators) -> None:
        self.memo = _Memo()
        self.bundle = Estimators(
            urc=_CachedScorer(inner.urc, self.memo),
            sp_slm=_CachedPredictor(inner.sp_slm, self.memo, "sp_slm"),
            sp_llm=_CachedPredictor(inner.sp_llm, self.memo, "sp_llm"),
            dp=_CachedDistance(inner.dp, self.memo),
            sd=_CachedDecomposer(inner.sd, self.memo),
            versions=dict(inner.versions),
            divergence=inner.divergence,
            embed=self._cached_embed(inner.embed),
            calibration=inner.calibration,
        )

    def _cached_embed(self, embed: Callable[[str], Vector] | None) -> Callable[[str], Vector] | None:
        if embed is None:
            return None
        memo = self.memo
        return lambda text: memo.get(("embed", text), lambda: embed(text))

    @property
    def saved_s(self) -> float:
        """Seconds the cache hits saved so far (what an uncached router would have spent)."""
        return self.memo.saved_s
