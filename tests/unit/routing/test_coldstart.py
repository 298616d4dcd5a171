"""HERA's cold-start mode without estimators, and the online threshold fit (routing/coldstart.py)."""

from __future__ import annotations

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing import coldstart
from hera_router.routing.base import Executor, MissingEstimatorsError, RoutingContext
from hera_router.routing.coldstart import ColdStart, Point, fit_threshold
from hera_router.routing.hera import HeraPolicy, hera_variant


def context(seq: int = 0) -> RoutingContext:
    return RoutingContext(request_id="r1", request="the request", current=f"step {seq}", seq=seq)


def test_hera_without_estimators_routes_every_step_to_the_slm_in_cold_start_mode() -> None:
    policy = HeraPolicy(RoutingSettings(cold_start_threshold=-0.3))
    decision = policy.decide(context(2))
    assert decision.executor is Executor.SLM
    assert decision.branch == coldstart.BRANCH
    assert decision.span == 1
    assert decision.scores == {"cold_start": 1.0, "cold_start_threshold": -0.3, "cold_start_samples": 0.0}
    assert decision.estimator_versions == {}


def test_the_threshold_passed_in_is_recorded_on_the_decision() -> None:
    learned = ColdStart(threshold=-0.6, samples=120, requests=130, version="3")
    decision = HeraPolicy(RoutingSettings()).decide(context(), None, cold_start=learned)
    assert decision.scores["cold_start_threshold"] == -0.6
    assert decision.scores["cold_start_samples"] == 120.0
    assert decision.estimator_versions == {coldstart.REGISTRY_NAME: "3"}


@pytest.mark.parametrize(
    ("confidence", "accept"), [(-0.2, True), (-0.5, True), (-0.5000001, False), (-2.0, False), (None, False)]
)
def test_cold_start_verify_keeps_a_result_whose_logprob_reaches_the_threshold(
    confidence: float | None, accept: bool
) -> None:
    verdict = HeraPolicy(RoutingSettings()).verify(context(), confidence, None, cold_start=ColdStart(-0.5))
    assert verdict is not None
    assert verdict.accept is accept
    assert verdict.threshold == -0.5
    if accept:
        assert verdict.reason is None
    else:
        assert verdict.reason is not None
        assert verdict.reason.startswith("cold start:")
    if confidence is None:
        assert verdict.score == coldstart.NO_LOGPROB_SCORE
        assert verdict.reason is not None
        assert "no logprobs" in verdict.reason


def test_without_a_threshold_passed_verify_uses_the_configured_default() -> None:
    policy = HeraPolicy(RoutingSettings(cold_start_threshold=-0.1))
    kept = policy.verify(context(), -0.05, None)
    rejected = policy.verify(context(), -0.15, None)
    assert kept is not None
    assert kept.accept
    assert kept.threshold == -0.1
    assert rejected is not None
    assert not rejected.accept


@pytest.mark.parametrize("name", ["hera-paper", "hera-no-sd", "hera-verify-only"])
def test_the_ablations_still_need_estimators(name: str) -> None:
    policy = hera_variant(name)(RoutingSettings())
    with pytest.raises(MissingEstimatorsError, match="bootstrap"):
        policy.decide(context())


def test_cold_start_off_restores_the_error_that_says_to_bootstrap() -> None:
    policy = HeraPolicy(RoutingSettings(cold_start=False))
    with pytest.raises(MissingEstimatorsError, match="bootstrap"):
        policy.decide(context())
    assert policy.verify(context(), -0.1, None) is None


# -- the fit -----------------------------------------------------------------------------------


def points() -> list[Point]:
    # Score (accuracy) against All-LLM's 0.9: the floor at 3 % tolerance is 0.873.
    return [
        Point(-0.1, 0.90, 0.05, 400),
        Point(-0.3, 0.91, 0.35, 400),
        Point(-0.6, 0.90, 0.80, 400),
        Point(-0.8, 0.88, 0.90, 400),  # above the floor, but not by a standard error (0.016)
        Point(-1.0, 0.70, 0.97, 400),
    ]


def fit(pts: list[Point], samples: int = 400, **kwargs: float) -> coldstart.ThresholdFit:
    options = {"default": -0.1, "min_samples": 100, "tolerance": 0.03, "reference": 0.9, **kwargs}
    return fit_threshold(
        pts,
        objective="accuracy",
        reference=float(options["reference"]),
        samples=samples,
        requests=samples,
        default=float(options["default"]),
        min_samples=int(options["min_samples"]),
        tolerance=float(options["tolerance"]),
    )


def test_the_fit_keeps_the_highest_slm_share_within_the_tolerance_by_a_standard_error() -> None:
    result = fit(points())
    assert result.fitted
    assert result.threshold == -0.6
    assert result.slm_share == 0.80


def test_with_a_wider_tolerance_the_fit_moves_further() -> None:
    assert fit(points(), tolerance=0.05).threshold == -0.8


def test_below_the_minimum_the_default_stays_in_force() -> None:
    result = fit(points(), samples=99)
    assert not result.fitted
    assert result.threshold == -0.1
    assert result.score == 0.90
    assert result.slm_share == 0.05


def test_when_no_threshold_qualifies_the_fit_takes_the_best_scoring_one() -> None:
    result = fit(points(), reference=1.0)  # floor 0.97: none is close enough
    assert result.fitted
    assert result.threshold == -0.3


def test_described_threshold_says_where_it_comes_from() -> None:
    assert "configured default" in ColdStart(-0.1).describe()
    learned = ColdStart(-0.6, samples=150, requests=160, version="2")
    assert learned.learned
    assert "150 shadowed requests" in learned.describe()
    assert "v2" in learned.describe()
