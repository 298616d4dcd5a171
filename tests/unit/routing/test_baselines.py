"""Baseline policies and the registry."""

from __future__ import annotations

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, RoutingContext, UnknownPolicyError
from hera_router.routing.registry import create_policy, policy_names


def context(request: str, seq: int) -> RoutingContext:
    return RoutingContext(request_id=f"id-{seq}", request=request, current=request, seq=seq)


def test_fixed_policies() -> None:
    settings = RoutingSettings()
    assert create_policy("all-slm", settings).decide(context("q", 0)).executor is Executor.SLM
    assert create_policy("all-llm", settings).decide(context("q", 3)).executor is Executor.LLM


def test_random_is_reproducible_and_near_its_probability() -> None:
    policy = create_policy("random", RoutingSettings(random_p_slm=0.3))
    draws = [policy.decide(context(f"request {i}", i % 7)).executor for i in range(2000)]
    again = [policy.decide(context(f"request {i}", i % 7)).executor for i in range(2000)]
    assert draws == again
    share = draws.count(Executor.SLM) / len(draws)
    assert 0.25 < share < 0.35
    other_seed = create_policy("random", RoutingSettings(random_p_slm=0.3, random_seed=1))
    assert [other_seed.decide(context(f"request {i}", i % 7)).executor for i in range(2000)] != draws


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicyError, match="all-llm"):
        create_policy("herra", RoutingSettings())
    assert {"all-slm", "all-llm", "random"} <= set(policy_names())


def test_decision_invariants() -> None:
    with pytest.raises(ValueError, match="span"):
        Decision(executor=Executor.SLM, branch="sle", policy="hera", span=0)
    with pytest.raises(ValueError, match="SLM"):
        Decision(executor=Executor.LLM, branch="sd", policy="hera", parts=("a", "b"))
