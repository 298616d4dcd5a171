"""Costs: the components of the model calls summed per request, batch and tenant, and a tenant's
spend in a budget window.

Every figure is a sum over ``model_calls`` (all statuses: a discarded or failed call was still
paid for, and a ``started`` one counts at its estimate where budgets are checked). The request's
running ``cost_usd`` is the same sum kept incrementally; :meth:`CostRepository.for_requests`
recomputes it from the calls, so the two can be audited against each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hera_router.db.enums import CallStatus
from hera_router.db.models import ModelCall, Request, Tenant

COMPONENT_COLUMNS = ("tokens_cost_usd", "gpu_cost_usd", "energy_cost_usd", "transfer_cost_usd")


@dataclass(frozen=True, slots=True)
class CostComponents:
    """Summed cost components of some model calls, in USD."""

    calls: int = 0
    tokens_usd: float = 0.0
    gpu_usd: float = 0.0
    energy_usd: float = 0.0
    transfer_usd: float = 0.0
    bytes_sent: int = 0
    total_usd: float = 0.0
    """The sum of the calls' ``cost_usd`` (each the sum of its components)."""
    cloud_tokens_usd: float = 0.0
    """The paper's cost: token dollars of the cloud calls only."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sums() -> list[ColumnElement[Any]]:
    zero = 0.0
    return [
        func.count(ModelCall.id),
        func.coalesce(func.sum(ModelCall.tokens_cost_usd), zero),
        func.coalesce(func.sum(ModelCall.gpu_cost_usd), zero),
        func.coalesce(func.sum(ModelCall.energy_cost_usd), zero),
        func.coalesce(func.sum(ModelCall.transfer_cost_usd), zero),
        func.coalesce(func.sum(ModelCall.bytes_sent), 0),
        func.coalesce(func.sum(ModelCall.cost_usd), zero),
        func.coalesce(func.sum(ModelCall.tokens_cost_usd).filter(ModelCall.role == "cloud"), zero),
    ]


def _components(row: Sequence[Any]) -> CostComponents:
    calls, tokens, gpu, energy, transfer, sent, total, cloud = row
    return CostComponents(
        calls=int(calls or 0),
        tokens_usd=float(tokens),
        gpu_usd=float(gpu),
        energy_usd=float(energy),
        transfer_usd=float(transfer),
        bytes_sent=int(sent or 0),
        total_usd=float(total),
        cloud_tokens_usd=float(cloud),
    )


class CostRepository:
    """Read-only sums of model-call costs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def for_requests(self, request_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, CostComponents]:
        """Each request's summed components (requests without calls are absent)."""
        if not request_ids:
            return {}
        rows = self.session.execute(
            select(ModelCall.request_id, *_sums())
            .where(ModelCall.request_id.in_(list(request_ids)))
            .group_by(ModelCall.request_id)
        ).all()
        return {row[0]: _components(row[1:]) for row in rows}

    def for_batch(self, batch_id: uuid.UUID) -> CostComponents:
        row = self.session.execute(
            select(*_sums()).join(Request, Request.id == ModelCall.request_id).where(Request.batch_id == batch_id)
        ).one()
        return _components(row)

    def for_tenant(
        self, tenant_id: uuid.UUID, since: datetime | None = None, until: datetime | None = None
    ) -> CostComponents:
        """The tenant's summed components over calls made in [since, until)."""
        statement = (
            select(*_sums()).join(Request, Request.id == ModelCall.request_id).where(Request.tenant_id == tenant_id)
        )
        if since is not None:
            statement = statement.where(ModelCall.created_at >= since)
        if until is not None:
            statement = statement.where(ModelCall.created_at < until)
        return _components(self.session.execute(statement).one())

    def tenant_breakdown(
        self, tenant_id: uuid.UUID, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[str, str, str, CostComponents]]:
        """(UTC day, role, model, components) rows of the tenant's calls, oldest day first."""
        # Postgres takes the date of a timestamptz in the session's time zone: ask for UTC's.
        postgres = self.session.get_bind().dialect.name == "postgresql"
        day = func.date(func.timezone("UTC", ModelCall.created_at)) if postgres else func.date(ModelCall.created_at)
        statement = (
            select(day, ModelCall.role, ModelCall.model, *_sums())
            .join(Request, Request.id == ModelCall.request_id)
            .where(Request.tenant_id == tenant_id)
            .group_by(day, ModelCall.role, ModelCall.model)
            .order_by(day, ModelCall.role, ModelCall.model)
        )
        if since is not None:
            statement = statement.where(ModelCall.created_at >= since)
        if until is not None:
            statement = statement.where(ModelCall.created_at < until)
        return [
            (str(row[0]), str(getattr(row[1], "value", row[1])), str(row[2]), _components(row[3:]))
            for row in self.session.execute(statement).all()
        ]

    def tenant_spend(self, tenant_id: uuid.UUID, since: datetime) -> float:
        """What the tenant has spent since ``since``, counting calls still ``started`` (in flight)
        at their estimate: the figure a budget is checked against before another call starts."""
        spent = func.coalesce(
            func.sum(func.coalesce(ModelCall.cost_usd, 0.0)).filter(ModelCall.status != CallStatus.STARTED), 0.0
        )
        in_flight = func.coalesce(
            func.sum(ModelCall.estimated_cost_usd).filter(ModelCall.status == CallStatus.STARTED), 0.0
        )
        row = self.session.execute(
            select(spent, in_flight)
            .join(Request, Request.id == ModelCall.request_id)
            .where(Request.tenant_id == tenant_id, ModelCall.created_at >= since)
        ).one()
        return float(row[0]) + float(row[1])

    def lock_tenant(self, tenant_id: uuid.UUID) -> Tenant | None:
        """The tenant row, locked until the transaction ends (``SELECT ... FOR UPDATE`` on Postgres;
        SQLite has one writer anyway): budget checks of one tenant's concurrent steps run in turn."""
        return self.session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).one_or_none()
