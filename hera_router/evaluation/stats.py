"""The statistics every study shares: one bootstrap rule, aligned per-request columns, and the
comparison of two policies' accuracy at the same SLM share.

**The bootstrap.** Every interval in the evaluation is a percentile bootstrap over requests:
``resamples`` draws of ``n`` request indices with replacement from ``numpy.random.default_rng(seed)``
(:func:`resample_indices`), the statistic computed on each draw, draws that give NaN or ±inf left
out, and the interval read with ``numpy.quantile``'s linear rule at ``(1 - level) / 2`` and
``1 - (1 - level) / 2`` (:func:`percentile_interval`). Resampling whole requests keeps each
request's steps together. Two sides of a comparison are resampled with the same indices (a paired
bootstrap), so their difference has an interval of its own.

**Equal SLM share.** A policy is compared with another one's accuracy/SLM-share curve (a threshold
sweep) by interpolating the curve linearly at the policy's share (:func:`interpolate`); outside the
curve's range the nearest end is used and flagged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from hera_router.training.outcomes import RequestOutcome

Vector = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]
T = TypeVar("T")


def resample_indices(n: int, resamples: int, rng: np.random.Generator) -> Indices:
    """``resamples`` rows of ``n`` indices drawn with replacement (the bootstrap's draws)."""
    return rng.integers(0, n, size=(resamples, n))


def percentile_interval(samples: Sequence[float] | Vector, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite ``samples`` (NaN, NaN when there are none)."""
    values = np.asarray(samples, dtype=float)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (math.nan, math.nan)
    tail = (1 - level) / 2
    return (float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail)))


def bootstrap_ci(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``items`` (the module's rule)."""
    if not items or resamples <= 0:
        return (math.nan, math.nan)
    draws = resample_indices(len(items), resamples, np.random.default_rng(seed))
    return percentile_interval([statistic([items[i] for i in row]) for row in draws], level)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's warnings about empty or all-NaN slices (they yield NaN, which is handled)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def nanmean_rows(values: Vector) -> Vector:
    """The mean of each row, NaN entries left out."""
    with quiet():
        return np.nanmean(values, axis=-1)  # type: ignore[no-any-return]


def ratio_of_sums(num: Vector, den: Vector) -> Vector:
    """``sum(num) / sum(den)`` along the last axis, NaN where the denominator sums to 0."""
    total = den.sum(axis=-1)
    with quiet():
        ratio: Vector = np.where(total > 0, num.sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)
    return ratio


def interpolate(share: float, points: Sequence[tuple[float, float]]) -> tuple[float, bool]:
    """Accuracy at ``share`` on the (SLM share, accuracy) curve, linear between the nearest points on
    either side; outside the curve's range the nearest end (and ``False``)."""
    curve = sorted((s, a) for s, a in points if math.isfinite(s) and math.isfinite(a))
    if not curve or not math.isfinite(share):
        return math.nan, False
    if share <= curve[0][0]:
        return curve[0][1], share >= curve[0][0] - 1e-9
    if share >= curve[-1][0]:
        return curve[-1][1], share <= curve[-1][0] + 1e-9
    for (s0, a0), (s1, a1) in pairwise(curve):
        if s0 <= share <= s1:
            return (a0 if s1 == s0 else a0 + (a1 - a0) * (share - s0) / (s1 - s0)), True
    return curve[-1][1], False  # pragma: no cover - the loop always finds the bracket


@dataclass(frozen=True)
class Columns:
    """One policy's counted requests as aligned arrays, sorted by request key."""

    keys: list[str]
    score: Vector
    share: Vector
    cost: Vector
    reference: Vector
    steps: Vector
    decision_s: Vector

    @classmethod
    def of(cls, outcomes: Sequence[RequestOutcome], all_llm: Mapping[str, float] | None = None) -> Columns:
        """``all_llm`` maps a request to All-LLM's cost on it; requests without one cost 0 on both sides."""
        reference = all_llm or {}
        rows = sorted((o for o in outcomes if o.counted), key=lambda o: o.key)
        share = [math.nan if (s := o.slm_share) is None else s for o in rows]
        return cls(
            keys=[o.key for o in rows],
            score=np.array([o.score for o in rows], dtype=float),
            share=np.array(share, dtype=float),
            cost=np.array([o.remote_cost_usd if o.key in reference else 0.0 for o in rows], dtype=float),
            reference=np.array([reference.get(o.key, 0.0) for o in rows], dtype=float),
            steps=np.array([o.n_steps for o in rows], dtype=float),
            decision_s=np.array([o.decision_s for o in rows], dtype=float),
        )

    def aligned(self, keys: Sequence[str]) -> Columns:
        """The rows of ``keys``, in that order (every key must be present)."""
        index = {k: i for i, k in enumerate(self.keys)}
        pick = np.array([index[k] for k in keys], dtype=int)
        return Columns(
            keys=list(keys),
            score=self.score[pick],
            share=self.share[pick],
            cost=self.cost[pick],
            reference=self.reference[pick],
            steps=self.steps[pick],
            decision_s=self.decision_s[pick],
        )

    def point(self, pick: Indices | None = None) -> tuple[float, float]:
        """(SLM share, accuracy) of the rows ``pick`` (all rows when None); NaN when there are none."""
        if not self.keys:
            return math.nan, math.nan
        share, score = (self.share, self.score) if pick is None else (self.share[pick], self.score[pick])
        with quiet():
            return float(np.nanmean(share)), float(np.mean(score))


def common_columns(*sides: Sequence[RequestOutcome]) -> list[Columns]:
    """Each side's columns restricted to the requests every side counted, aligned row by row."""
    columns = [Columns.of(side) for side in sides]
    keys = sorted(set.intersection(*(set(c.keys) for c in columns))) if columns else []
    return [c.aligned(keys) for c in columns]


def accuracy_at_share(share: float, curve: Sequence[Columns], pick: Indices | None = None) -> tuple[float, bool]:
    """The curve's accuracy interpolated at ``share`` on the rows ``pick`` (see :func:`interpolate`)."""
    return interpolate(share, [point.point(pick) for point in curve])


def paired_draws(n: int, resamples: int, seed: int) -> Indices:
    """The resampled request rows every side of one comparison shares (none when ``n`` is 0)."""
    if n == 0 or resamples <= 0:
        return np.empty((0, n), dtype=np.int64)
    return resample_indices(n, resamples, np.random.default_rng(seed))
