"""HERA's cold-start mode: routing before any estimator has been trained, and its online threshold.

Until ``hera-router bootstrap`` (or a training and promotion) has made a complete set of estimators
active, ``hera`` routes with the one part of HERA that needs no learned model: every step goes to
the SLM first (branch :data:`BRANCH`) and the verify stage judges the result by the SLM's mean
token logprob alone. At or above the threshold in force the result is kept; below it, or without
logprobs, the same step is re-run on the LLM (branch ``verify``, as in trained mode).

The threshold in force starts at a conservative default (``HERA_ROUTING__COLD_START_THRESHOLD``)
and is then learned online from shadow trees (``training/shadow.py``: a sampled share of finished
requests re-run on both models, the All-SLM and All-LLM chains first). The fit is the calibration's
objective (``training/calibration.py``, ``accuracy-within``) on the shadowed requests: each
candidate threshold of :data:`THRESHOLD_GRID` (and the default) is replayed in cold-start mode on
the shadow trees (``training/coldstart.py``; no model calls), and :func:`fit_threshold` keeps the
threshold with the highest SLM share whose score is at least (1 − ``HERA_CALIBRATION__ACCURACY_TOLERANCE``)
× All-LLM's on the same requests by a margin of one standard error (a few hundred shadowed requests
measure a score to a few points, and the boundary threshold is where that noise decides; ties: the
higher score, then the higher threshold). The score:

* ``accuracy`` when enough shadowed requests carry a gold answer (``gold_answer`` on submission):
  the requests' quality with their metric, exactly as the calibration measures it;
* otherwise ``agreement``: the share of requests whose final answer is the All-LLM chain's
  (All-LLM's own score is then 1). This needs no gold answer but is stricter than accuracy: where
  the LLM's answer is wrong, a different answer counts against the threshold even when it is right,
  so the fit errs towards the LLM.

A request the replay cannot follow on its tree (a model switch the shadow tree's node budget did
not reach) is left out of that threshold's numbers. Below ``HERA_ROUTING__COLD_START_MIN_REQUESTS``
scored shadowed requests the default stays in force.

This module is pure (no database): ``training/coldstart.py`` reads the shadow trees, stores the fit
as the registry entry :data:`REGISTRY_NAME` and serves it to routers; once trained estimators are
active, trained mode takes over and the cold-start entry is no longer read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BRANCH = "cold-start-verify"
"""Decision branch of a cold-start step: on the SLM, to be judged by its logprob."""
REGISTRY_NAME = "cold_start"
"""Registry name (``estimator_versions.name``) of the thresholds learned from shadow traffic."""
MODE_COLD_START = "cold-start"
MODE_TRAINED = "trained"
MODES = (MODE_COLD_START, MODE_TRAINED)
NO_LOGPROB_SCORE = -100.0
"""The verify score recorded for an SLM result without logprobs (always rejected)."""


@dataclass(frozen=True, slots=True)
class ColdStart:
    """The cold-start threshold in force and what it rests on."""

    threshold: float
    """Mean token logprob at or above which the SLM's result is kept."""
    samples: int = 0
    """Shadowed requests the threshold was fitted on (0: the configured default)."""
    requests: int = 0
    """Shadow trees read for the fit (some may lack an All-LLM answer)."""
    version: str | None = None
    """The registry version it was stored as (None: the default, nothing stored)."""

    @property
    def learned(self) -> bool:
        return self.version is not None and self.samples > 0

    def describe(self) -> str:
        if not self.learned:
            so_far = f"{self.requests} shadowed requests so far" if self.requests else "no shadow samples yet"
            return f"threshold {self.threshold:.3f} (the configured default; {so_far})"
        return (
            f"threshold {self.threshold:.3f} learned from {self.samples} shadowed requests (cold_start v{self.version})"
        )


THRESHOLD_GRID: tuple[float, ...] = (
    -0.02,
    -0.05,
    -0.1,
    -0.15,
    -0.2,
    -0.25,
    -0.3,
    -0.35,
    -0.4,
    -0.5,
    -0.6,
    -0.7,
    -0.8,
    -0.9,
    -1.0,
    -1.25,
    -1.5,
    -2.0,
)
"""Candidate thresholds (mean token logprobs) the online fit replays."""


OBJECTIVES = ("accuracy", "agreement")


@dataclass(frozen=True, slots=True)
class Point:
    """One candidate threshold replayed on the shadowed requests."""

    threshold: float
    score: float
    """Mean accuracy (or agreement with All-LLM) of the requests replayed to an end."""
    slm_share: float
    requests: int
    """Requests replayed to an end (those the replay left its tree on are not counted)."""

    def to_json(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "score": round(self.score, 4),
            "slm_share": round(self.slm_share, 4),
            "requests": self.requests,
        }


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    """What :func:`fit_threshold` chose and the numbers behind it."""

    threshold: float
    samples: int
    """Scored shadowed requests (what the minimum counts)."""
    requests: int
    """Shadow trees read."""
    fitted: bool
    """False: too few samples, the default stays in force."""
    objective: str
    """``accuracy`` (gold answers) or ``agreement`` (with the All-LLM chain's answer)."""
    score: float
    """The chosen threshold's score on the shadowed requests."""
    reference: float
    """All-LLM's score on the same requests (1 for agreement)."""
    slm_share: float
    tolerance: float
    points: tuple[Point, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "threshold": round(self.threshold, 6),
            "samples": self.samples,
            "requests": self.requests,
            "fitted": self.fitted,
            "objective": self.objective,
            "score": round(self.score, 4),
            "reference": round(self.reference, 4),
            "slm_share": round(self.slm_share, 4),
            "tolerance": self.tolerance,
            "points": [p.to_json() for p in self.points],
        }


def accepts(confidence: float | None, threshold: float) -> bool:
    """The cold-start verify rule: keep a result whose mean token logprob reaches the threshold."""
    return confidence is not None and confidence >= threshold


def standard_error(point: Point) -> float:
    """The standard error of a point's score (a share of its requests)."""
    if point.requests <= 0:
        return 1.0
    share = min(max(point.score, 0.0), 1.0)
    return math.sqrt(share * (1.0 - share) / point.requests)


def fit_threshold(
    points: Sequence[Point],
    *,
    objective: str,
    reference: float,
    samples: int,
    requests: int,
    default: float,
    min_samples: int,
    tolerance: float,
) -> ThresholdFit:
    """The threshold with the highest SLM share whose score, less one standard error, is at least
    (1 − ``tolerance``) × ``reference`` (the best-scoring one if none is); the default below
    ``min_samples``."""
    at_default = next((p for p in points if p.threshold == default), None)
    usable = [p for p in points if p.requests > 0]
    if samples < min_samples or not usable:
        score, share = (at_default.score, at_default.slm_share) if at_default is not None else (0.0, 0.0)
        return ThresholdFit(
            default, samples, requests, False, objective, score, reference, share, tolerance, tuple(points)
        )
    floor = (1.0 - tolerance) * reference
    eligible = [p for p in usable if p.score - standard_error(p) >= floor - 1e-9]
    if eligible:
        best = max(eligible, key=lambda p: (p.slm_share, p.score, p.threshold))
    else:
        best = max(usable, key=lambda p: (p.score, p.threshold))
    return ThresholdFit(
        best.threshold,
        samples,
        requests,
        True,
        objective,
        best.score,
        reference,
        best.slm_share,
        tolerance,
        tuple(points),
    )
