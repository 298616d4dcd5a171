"""HERA with the divergence estimator: the learned similarity, the verify stage, the calibration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Executor, RoutingContext
from hera_router.routing.hera import HeraPolicy
from hera_router.routing.registry import create_policy
from tests.unit.routing.stubs import StubDivergence, estimators


def bundle(divergence: StubDivergence | None = None, calibration: dict[str, Any] | None = None, **kw: Any) -> Any:
    base = estimators(**kw)
    return replace(
        base,
        divergence=divergence or StubDivergence(),
        embed=lambda text: np.array([1.0, 0.0], dtype=np.float32),
        calibration=calibration,
    )


def ctx(seq: int = 1) -> RoutingContext:
    return RoutingContext("r1", "the request", f"step {seq}", seq)


def test_sse_compares_the_divergence_estimators_agreement_not_the_cosine() -> None:
    # The SP cosine is low (0.1: the paper's SSE would fail), the learned agreement is high.
    decision = HeraPolicy(RoutingSettings(use_urc=False)).decide(ctx(), bundle(slm=[0.1]))
    assert (decision.branch, decision.executor) == ("sse", Executor.SLM)
    assert decision.scores["sse_sim"] == pytest.approx(0.9)
    assert decision.scores["sp_cos"] == pytest.approx(0.1, abs=1e-6)
    # ... and a low agreement sends the step on through SLE/CD/SD to the LLM.
    low = HeraPolicy(RoutingSettings(use_urc=False, use_sd=False)).decide(
        ctx(), bundle(StubDivergence(agree=0.2), slm=[0.99], d=None)
    )
    assert low.executor is Executor.LLM


def test_paper_variant_keeps_the_sp_cosine_and_ignores_calibration() -> None:
    policy = create_policy("hera-paper", RoutingSettings())
    decision = policy.decide(ctx(), bundle(calibration={"kappa_base": 0.0, "version": "1"}, slm=[0.1], d=None))
    assert decision.scores["sse_sim"] == pytest.approx(0.1, abs=1e-6)
    assert decision.kappa == pytest.approx(0.64)  # the paper's 0.6 + 0.02 * 2
    assert policy.verify(ctx(), -2.0, bundle()) is None  # no verify stage


def test_calibration_sets_thresholds_and_can_only_switch_stages_off() -> None:
    calibration = {"kappa_base": 0.3, "tau_req": 0.99, "verify_threshold": 0.8, "use_urc": False, "version": "7"}
    decision = HeraPolicy(RoutingSettings()).decide(ctx(), bundle(calibration=calibration, urc=0.95, slm=[0.5]))
    assert "urc" not in decision.scores  # an untrusted URC never decides
    assert decision.kappa == pytest.approx(0.34)
    # A variant that removed a stage keeps it removed whatever the calibration says.
    no_sse = create_policy("hera-no-verify", RoutingSettings())
    assert no_sse.verify(ctx(), 0.0, bundle(calibration={"use_verify": True, "version": "7"})) is None
    # Without calibration the settings (the paper's constants) apply.
    plain = HeraPolicy(RoutingSettings()).decide(ctx(), bundle(urc=0.95))
    assert plain.branch == "urc"


def test_verify_accepts_a_confident_step_and_rejects_an_unsure_one() -> None:
    seen: list[tuple[int, float | None]] = []
    policy = HeraPolicy(RoutingSettings(verify_threshold=0.5))
    divergence = StubDivergence(seen=seen)
    accepted = policy.verify(ctx(3), -0.2, bundle(divergence))
    rejected = policy.verify(ctx(3), -1.4, bundle(divergence))
    assert accepted is not None
    assert accepted.accept
    assert accepted.score == pytest.approx(0.95)
    assert rejected is not None
    assert not rejected.accept
    assert rejected.threshold == 0.5
    assert seen == [(3, -0.2), (3, -1.4)]
    # No post-execution head (a profile without logprobs): the stage does not apply.
    assert policy.verify(ctx(3), -1.4, bundle(StubDivergence(can_verify=False))) is None
    assert HeraPolicy(RoutingSettings(use_verify=False)).verify(ctx(3), -1.4, bundle()) is None


def test_verify_only_offers_every_step_to_the_slm_first() -> None:
    policy = create_policy("hera-verify-only", RoutingSettings())
    decision = policy.decide(ctx(), bundle(StubDivergence(agree=0.0), urc=0.99, slm=[0.0]))
    assert (decision.branch, decision.executor, decision.span) == ("speculate", Executor.SLM, 1)
    verdict = policy.verify(ctx(), -2.0, bundle())
    assert verdict is not None
    assert not verdict.accept
