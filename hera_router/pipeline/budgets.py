"""Tenant budgets and request limits, as the hops check them (beyond the paper).

A tenant's spend in a window is the sum of its model calls' costs since the window opened (UTC
day, UTC calendar month), with calls still in flight counted at their estimate (the cost at the
step's token limit, written when the call is put on record). Three places check it:

- the API, on submission: a tenant at or over a budget gets 402 and a sentence naming it;
- the execution hop, before each model call (``admit_call``): it locks the tenant row, so one
  tenant's concurrent steps check in turn, each seeing the others' in-flight estimates. A call
  starts only while the spend is below the budget, so the budget is exceeded by at most the one
  call that started just below it (by its real cost beyond its estimate, for the others). With
  action ``stop`` the request fails naming the budget; with ``cheapest`` only edge calls go on.
- the router, when planning a step (``step_limits``): a tenant over budget with action
  ``cheapest`` gets the edge; the request's own cost cap and latency budget apply
  (``routing/constraints.py``).

Tenants without budgets skip all of it: no lock, and after a process first sees the tenant no
query either: whether a tenant has a budget is remembered for ``BUDGET_FLAG_TTL_S`` (so a budget
newly set on a busy tenant binds its running requests within that long; submissions check at once).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from hera_router.config import Settings
from hera_router.db.base import utcnow
from hera_router.db.models import Tenant
from hera_router.db.repositories import CostRepository
from hera_router.routing.constraints import StepLimits

BUDGET_FLAG_TTL_S = 2.0
_budget_flags: dict[uuid.UUID, tuple[float, bool]] = {}
"""tenant id → (monotonic expiry, has a budget): per process; dict operations are atomic in
CPython, and a race at worst reads the tenant row twice."""


class RequestLimits(Protocol):
    """What :func:`step_limits` reads of a request (the router's ``RequestState`` or the row)."""

    @property
    def tenant_id(self) -> uuid.UUID | None: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def cost_cap_usd(self) -> float | None: ...
    @property
    def latency_budget_s(self) -> float | None: ...
    @property
    def created_at(self) -> datetime | None: ...


def _budgeted_tenant(session: Session, tenant_id: uuid.UUID | None) -> Tenant | None:
    """The tenant row if it has a budget (None otherwise), skipping the read while this process
    recently saw that it has none."""
    if tenant_id is None:
        return None
    now = time.monotonic()
    cached = _budget_flags.get(tenant_id)
    if cached is not None and cached[0] > now and not cached[1]:
        return None
    tenant = session.get(Tenant, tenant_id)
    budgeted = tenant is not None and has_budget(tenant)
    _budget_flags[tenant_id] = (now + BUDGET_FLAG_TTL_S, budgeted)
    return tenant if budgeted else None


@dataclass(frozen=True, slots=True)
class BudgetBreach:
    """A budget the tenant has reached: which, how much, and what running requests do."""

    tenant: str
    period: str
    """``daily`` or ``monthly``."""
    budget_usd: float
    spent_usd: float
    action: str
    """``stop`` or ``cheapest``."""

    @property
    def message(self) -> str:
        resets = "at 00:00 UTC" if self.period == "daily" else "on the 1st of next month (UTC)"
        flag = "--daily" if self.period == "daily" else "--monthly"
        return (
            f"tenant {self.tenant!r} has spent ${self.spent_usd:.6f} of its {self.period} budget of "
            f"${self.budget_usd:.6f} (it resets {resets}); raise it with "
            f"`hera-router tenants budget {self.tenant} {flag} AMOUNT`"
        )


def window_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of the current UTC day and UTC month."""
    now = now or utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def action_of(settings: Settings, tenant: Tenant) -> str:
    return tenant.budget_action or settings.budgets.default_action


def has_budget(tenant: Tenant) -> bool:
    return tenant.daily_budget_usd is not None or tenant.monthly_budget_usd is not None


def breach(
    session: Session, settings: Settings, tenant: Tenant, *, adding_usd: float = 0.0, now: datetime | None = None
) -> BudgetBreach | None:
    """The first budget that ``adding_usd`` more spend would reach (daily first), or None.

    ``adding_usd=0`` asks whether the tenant is already at or over a budget.
    """
    if not has_budget(tenant):
        return None
    day, month = window_starts(now)
    costs = CostRepository(session)
    for period, budget, since in (
        ("daily", tenant.daily_budget_usd, day),
        ("monthly", tenant.monthly_budget_usd, month),
    ):
        if budget is None:
            continue
        spent = costs.tenant_spend(tenant.id, since)
        if spent + adding_usd >= budget:
            return BudgetBreach(tenant.name, period, budget, spent, action_of(settings, tenant))
    return None


def admit_call(session: Session, settings: Settings, tenant_id: uuid.UUID, *, cloud: bool) -> BudgetBreach | None:
    """Whether a model call of the tenant may start now (None) or which budget stops it.

    Call it inside the transaction that puts the call on record, so the lock taken here covers
    the check and the ``started`` row (with its estimate) that the next check will count.
    """
    if _budgeted_tenant(session, tenant_id) is None:
        return None
    tenant = CostRepository(session).lock_tenant(tenant_id)
    if tenant is None:  # pragma: no cover - the request's tenant is a foreign key
        return None
    found = breach(session, settings, tenant)
    if found is None or (found.action == "cheapest" and not cloud):
        return None
    return found


def keep_on_edge(session: Session, settings: Settings, tenant_id: uuid.UUID | None) -> str | None:
    """Why the verify stage keeps an SLM result it would escalate: the tenant is over a budget with
    action ``cheapest`` (None: escalate as usual)."""
    tenant = _budgeted_tenant(session, tenant_id)
    crossed = breach(session, settings, tenant) if tenant is not None else None
    if crossed is None or crossed.action != "cheapest":
        return None
    return f"verify would re-run the step on the cloud, but {crossed.message}; kept the edge's result"


def step_limits(
    session: Session, settings: Settings, request: RequestLimits, *, cloud_step_usd: float, verifies: bool
) -> StepLimits:
    """What ``routing.constraints.constrain`` needs for the request's next step."""
    tenant = _budgeted_tenant(session, request.tenant_id)
    crossed = breach(session, settings, tenant) if tenant is not None else None
    started = request.created_at
    elapsed = (utcnow() - started).total_seconds() if request.latency_budget_s is not None and started else 0.0
    return StepLimits(
        tenant_budget=crossed.message if crossed is not None and crossed.action == "cheapest" else None,
        cost_so_far_usd=request.cost_usd,
        cost_cap_usd=request.cost_cap_usd,
        cloud_step_usd=cloud_step_usd,
        latency_budget_s=request.latency_budget_s,
        elapsed_s=elapsed,
        latency_margin=settings.budgets.latency_margin,
        verifies=verifies,
    )
