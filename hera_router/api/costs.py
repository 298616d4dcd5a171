"""Tenant costs and budgets, as the operator and the tenant read and set them.

Shared by ``hera-router tenants budget`` / ``hera-router costs`` and the API's ``/v1/costs`` and
``/v1/budget``; free of FastAPI. Costs are the model calls' components summed per UTC day, role and
model (``db/repositories/costs.py``); every row's ``total_usd`` is the sum of its calls'
``cost_usd``, and the components of each call add up to it.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.tenants import TenantError
from hera_router.config import Settings
from hera_router.db.models import Tenant
from hera_router.db.repositories import CostRepository, TenantRepository
from hera_router.db.session import session_scope
from hera_router.pipeline.budgets import action_of, window_starts

BudgetAction = Literal["stop", "cheapest"]
CSV_COLUMNS = (
    "day",
    "role",
    "model",
    "calls",
    "tokens_usd",
    "gpu_usd",
    "energy_usd",
    "transfer_usd",
    "bytes_sent",
    "total_usd",
    "cloud_tokens_usd",
)


class CostRow(BaseModel):
    day: str
    role: str
    model: str
    calls: int
    tokens_usd: float
    gpu_usd: float
    energy_usd: float
    transfer_usd: float
    bytes_sent: int
    total_usd: float
    cloud_tokens_usd: float
    """The paper's cost (cloud token dollars only), for comparison with its tables."""


class CostReport(BaseModel):
    tenant: str
    since: datetime | None
    until: datetime | None
    rows: list[CostRow]
    total_usd: float
    cloud_tokens_usd: float


class BudgetStatus(BaseModel):
    tenant: str
    daily_budget_usd: float | None
    monthly_budget_usd: float | None
    action: BudgetAction
    spent_today_usd: float
    spent_this_month_usd: float
    """Spend in the window, with calls in flight at their estimate (what the budget is checked against)."""


def _tenant(session: Session, tenant: str | uuid.UUID) -> Tenant:
    repository = TenantRepository(session)
    found = repository.get(tenant) if isinstance(tenant, uuid.UUID) else repository.by_name(tenant)
    if found is None:
        raise TenantError(f"no tenant named {tenant!r}; see `hera-router tenants create`")
    return found


def budget_status(session: Session, settings: Settings, tenant: Tenant) -> BudgetStatus:
    day, month = window_starts()
    costs = CostRepository(session)
    action: Any = action_of(settings, tenant)
    return BudgetStatus(
        tenant=tenant.name,
        daily_budget_usd=tenant.daily_budget_usd,
        monthly_budget_usd=tenant.monthly_budget_usd,
        action=action,
        spent_today_usd=costs.tenant_spend(tenant.id, day),
        spent_this_month_usd=costs.tenant_spend(tenant.id, month),
    )


def read_budget(sessions: sessionmaker[Session], settings: Settings, tenant: str | uuid.UUID) -> BudgetStatus:
    with session_scope(sessions) as session:
        return budget_status(session, settings, _tenant(session, tenant))


def set_budget(
    sessions: sessionmaker[Session],
    settings: Settings,
    tenant: str,
    *,
    daily_usd: float | None,
    monthly_usd: float | None,
    action: BudgetAction | None,
) -> BudgetStatus:
    """Set the tenant's budgets (a negative amount clears that budget; None keeps it)."""
    for name, value in (("--daily", daily_usd), ("--monthly", monthly_usd)):
        if value is not None and value == 0:
            raise TenantError(f"{name} 0 would refuse every request; give a positive amount, or -1 to remove it")
    with session_scope(sessions) as session:
        row = _tenant(session, tenant)

        def merged(new: float | None, old: float | None) -> float | None:
            if new is None:
                return old
            return None if new < 0 else new

        TenantRepository(session).set_budget(
            row.id,
            daily_usd=merged(daily_usd, row.daily_budget_usd),
            monthly_usd=merged(monthly_usd, row.monthly_budget_usd),
            action=action or row.budget_action,
        )
        session.refresh(row)
        return budget_status(session, settings, row)


def cost_report(
    sessions: sessionmaker[Session], tenant: str | uuid.UUID, since: datetime | None, until: datetime | None = None
) -> CostReport:
    with session_scope(sessions) as session:
        row = _tenant(session, tenant)
        rows = [
            CostRow(day=day, role=role, model=model, **components.as_dict())
            for day, role, model, components in CostRepository(session).tenant_breakdown(row.id, since, until)
        ]
        total = CostRepository(session).for_tenant(row.id, since, until)
        return CostReport(
            tenant=row.name,
            since=since,
            until=until,
            rows=rows,
            total_usd=total.total_usd,
            cloud_tokens_usd=total.cloud_tokens_usd,
        )


def rows_csv(rows: Sequence[CostRow]) -> str:
    """The rows as CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = row.model_dump()
        writer.writerow([values[column] for column in CSV_COLUMNS])
    return out.getvalue()
