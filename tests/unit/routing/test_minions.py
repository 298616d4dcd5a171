"""Minions: SLM first, the step after a low-confidence SLM step on the LLM."""

from __future__ import annotations

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Executor, RoutingContext, Step
from hera_router.routing.baselines import MinionsPolicy, MissingConfidenceError


def context(*history: Step) -> RoutingContext:
    return RoutingContext(request_id="r", request="q", current="next", seq=len(history), history=tuple(history))


def test_slm_first_and_escalation_after_low_confidence() -> None:
    policy = MinionsPolicy(RoutingSettings(minions_logprob_threshold=-1.0))
    assert policy.decide(context()).executor is Executor.SLM
    sure = Step("a", "x", Executor.SLM, confidence=-0.2)
    unsure = Step("a", "x", Executor.SLM, confidence=-1.5)
    assert policy.decide(context(sure)).executor is Executor.SLM
    escalated = policy.decide(context(sure, unsure))
    assert escalated.executor is Executor.LLM
    assert escalated.scores == {"threshold": -1.0, "previous_logprob": -1.5}
    # After the LLM step the SLM gets the next one again (no confidence needed for an LLM step).
    assert policy.decide(context(unsure, Step("a", "x", Executor.LLM))).executor is Executor.SLM


def test_a_missing_confidence_is_an_error_not_a_silent_all_slm() -> None:
    with pytest.raises(MissingConfidenceError, match=r"Step\.confidence"):
        MinionsPolicy(RoutingSettings()).decide(context(Step("a", "x", Executor.SLM)))
