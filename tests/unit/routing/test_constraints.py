"""Budgets and SLAs over a policy's decision (routing/constraints.py): pure, no database."""

from __future__ import annotations

from hera_router.db.enums import Executor
from hera_router.routing.base import Decision
from hera_router.routing.constraints import StepLimits, constrain

SLM = Decision(executor=Executor.SLM, branch="sse", policy="hera")
LLM = Decision(executor=Executor.LLM, branch="fallback", policy="hera")
SPAN = Decision(executor=Executor.SLM, branch="sle", policy="hera", span=3)


def test_no_limits_change_nothing() -> None:
    assert constrain(SLM, StepLimits()) is SLM
    assert constrain(LLM, StepLimits(cost_cap_usd=1.0, cloud_step_usd=0.01)) is LLM


def test_a_tenant_over_a_cheapest_budget_gets_the_edge_with_the_reason() -> None:
    limits = StepLimits(tenant_budget="tenant 't' has spent $2 of its daily budget of $1")
    moved = constrain(LLM, limits)
    assert (moved.executor, moved.branch) == (Executor.SLM, "budget")
    assert moved.reason is not None
    assert "daily budget" in moved.reason
    assert constrain(SLM, limits).executor is Executor.SLM


def test_a_cloud_step_that_would_pass_the_cost_cap_stays_on_the_edge() -> None:
    near = StepLimits(cost_so_far_usd=0.095, cost_cap_usd=0.1, cloud_step_usd=0.01)
    moved = constrain(LLM, near)
    assert (moved.executor, moved.branch) == (Executor.SLM, "cost-cap")
    assert moved.reason is not None
    assert "cost cap $0.100000" in moved.reason
    assert constrain(LLM, StepLimits(cost_so_far_usd=0.05, cost_cap_usd=0.1, cloud_step_usd=0.01)) is LLM


def test_a_tight_latency_budget_skips_speculative_slm_steps_only() -> None:
    tight = StepLimits(latency_budget_s=10.0, elapsed_s=6.0, latency_margin=0.5, verifies=True)
    moved = constrain(SLM, tight)
    assert (moved.executor, moved.branch) == (Executor.LLM, "latency")
    assert moved.reason is not None
    assert "4.0 s left" in moved.reason
    assert constrain(SPAN, tight) is SPAN  # a confident multi-step span stays on the edge
    assert constrain(SLM, StepLimits(latency_budget_s=10.0, elapsed_s=6.0, verifies=False)) is SLM
    assert constrain(SLM, StepLimits(latency_budget_s=10.0, elapsed_s=2.0, verifies=True)) is SLM
