"""Budgets and SLAs applied to a policy's decision (beyond the paper). Pure: no Celery, no DB.

The policy decides as if money and time were free; :func:`constrain` then overrides its choice
where a limit says so, and records why in ``Decision.reason`` (stored as the decision's
``fallback_reason``). In order of precedence:

1. ``budget``: the tenant crossed a daily or monthly budget and its action is ``cheapest``: the
   step runs on the edge (the cheapest rung), whatever the policy chose.
2. ``cost-cap``: the request's spend plus what one cloud step would cost (at the step's token
   limit) exceeds its ``cost_cap_usd``: the step stays on the edge. A request near its cap thus
   finishes on the cheapest capable rung instead of stopping.
3. ``latency``: less than ``HERA_BUDGETS__LATENCY_MARGIN`` of the request's latency budget is
   left and the policy chose a one-step SLM run that the verify stage may escalate (a speculative
   run): the step goes to the cloud directly, saving the SLM call and the verify round trip.
   Multi-step spans (SLE/CD) and decompositions are the estimators' confident cases and stay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hera_router.db.enums import Executor
from hera_router.routing.base import Decision


@dataclass(frozen=True, slots=True)
class StepLimits:
    """What the router knows about a request's limits when it plans a step."""

    tenant_budget: str | None = None
    """The crossed budget's description when the tenant is over one with action ``cheapest``."""
    cost_so_far_usd: float = 0.0
    cost_cap_usd: float | None = None
    cloud_step_usd: float = 0.0
    """What one cloud step would cost at its token limit (an upper estimate)."""
    latency_budget_s: float | None = None
    elapsed_s: float = 0.0
    latency_margin: float = 0.5
    verifies: bool = False
    """The policy has a verify stage (its single SLM steps are speculative)."""


def _to(decision: Decision, executor: Executor, branch: str, reason: str) -> Decision:
    return replace(decision, executor=executor, branch=branch, span=1, parts=(), reason=reason)


def constrain(decision: Decision, limits: StepLimits) -> Decision:
    """The decision to carry out under ``limits`` (``decision`` itself when none applies)."""
    if limits.tenant_budget is not None:
        if decision.executor is Executor.SLM:
            return replace(decision, reason=f"{limits.tenant_budget}; finishing on the edge")
        return _to(decision, Executor.SLM, "budget", f"{limits.tenant_budget}; finishing on the edge")
    if limits.cost_cap_usd is not None and decision.executor is Executor.LLM:
        projected = limits.cost_so_far_usd + limits.cloud_step_usd
        if projected > limits.cost_cap_usd:
            return _to(
                decision,
                Executor.SLM,
                "cost-cap",
                f"cost cap ${limits.cost_cap_usd:.6f}: spent ${limits.cost_so_far_usd:.6f}, a cloud step "
                f"could cost ${limits.cloud_step_usd:.6f}; stayed on the edge",
            )
    if (
        limits.latency_budget_s is not None
        and limits.verifies
        and decision.executor is Executor.SLM
        and decision.span == 1
        and not decision.parts
    ):
        left = limits.latency_budget_s - limits.elapsed_s
        if left < limits.latency_margin * limits.latency_budget_s:
            return _to(
                decision,
                Executor.LLM,
                "latency",
                f"latency budget {limits.latency_budget_s:.1f} s: {max(left, 0.0):.1f} s left, skipped the "
                "speculative SLM run",
            )
    return decision
