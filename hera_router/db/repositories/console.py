"""The web console's reads: recent requests and batches across tenants, and the routing overview's
aggregates per UTC day (steps by executor, calls' tokens and cost, decisions per branch, spend per
tenant).

``tenant_id=None`` means every tenant (the operator's view); otherwise each statement is scoped to
that tenant's requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.orm import Session

from hera_router.db.enums import Executor, ModelRole, RequestStatus
from hera_router.db.models import Batch, Decision, ModelCall, PlanNode, Request, Subtask, Tenant


@dataclass(frozen=True, slots=True)
class DaySteps:
    day: str
    slm_steps: int
    llm_steps: int


@dataclass(frozen=True, slots=True)
class DayCalls:
    day: str
    requests: int
    cost_usd: float
    all_llm_tokens_in: int
    all_llm_tokens_out: int


@dataclass(frozen=True, slots=True)
class TenantSpend:
    tenant: str
    requests: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Owner:
    id: uuid.UUID
    name: str


class ConsoleRepository:
    """Read-only queries behind ``/v1/console``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _day(self, column: Any) -> ColumnElement[Any]:
        # Postgres takes the date of a timestamptz in the session's time zone: ask for UTC's.
        if self.session.get_bind().dialect.name == "postgresql":
            return func.date(func.timezone("UTC", column))
        return func.date(column)

    @staticmethod
    def _of(tenant_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
        """The condition scoping a statement joined to ``requests`` to the tenant (none for all)."""
        return [] if tenant_id is None else [Request.tenant_id == tenant_id]

    def owner(self, kind: type[Request] | type[Batch], object_id: uuid.UUID) -> Owner | None:
        """The tenant of the request or batch ``object_id``; None if there is no such object."""
        row = self.session.execute(
            select(Tenant.id, Tenant.name).join(kind, kind.tenant_id == Tenant.id).where(kind.id == object_id)
        ).one_or_none()
        return None if row is None else Owner(row[0], str(row[1]))

    def recent_requests(
        self, tenant_id: uuid.UUID | None, limit: int, status: RequestStatus | None = None
    ) -> Sequence[tuple[Request, str]]:
        """(request, tenant name), newest first; node requests of dependency plans left out (their
        graph request links them)."""
        statement = (
            select(Request, Tenant.name)
            .join(Tenant, Tenant.id == Request.tenant_id)
            .where(~exists().where(PlanNode.child_id == Request.id))
        )
        if status is not None:
            statement = statement.where(Request.status == status)
        statement = statement.where(*self._of(tenant_id))
        rows = self.session.execute(statement.order_by(Request.created_at.desc(), Request.id.desc()).limit(limit))
        return [(request, str(name)) for request, name in rows]

    def recent_batches(self, tenant_id: uuid.UUID | None, limit: int) -> Sequence[tuple[Batch, str]]:
        statement = select(Batch, Tenant.name).join(Tenant, Tenant.id == Batch.tenant_id)
        if tenant_id is not None:
            statement = statement.where(Batch.tenant_id == tenant_id)
        rows = self.session.execute(statement.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit))
        return [(batch, str(name)) for batch, name in rows]

    def failed_in_batch(self, batch_id: uuid.UUID, limit: int) -> Sequence[Request]:
        """The batch's failed requests, in submission order."""
        return self.session.scalars(
            select(Request)
            .where(Request.batch_id == batch_id, Request.status == RequestStatus.FAILED)
            .order_by(Request.created_at, Request.id)
            .limit(limit)
        ).all()

    def steps_per_day(self, tenant_id: uuid.UUID | None, since: datetime) -> list[DaySteps]:
        """Steps created since ``since`` by UTC day and executor (SLM share's numerator and
        denominator); parts of decomposed steps count as steps."""
        day = self._day(Subtask.created_at)
        slm = func.count(Subtask.id).filter(Subtask.executor == Executor.SLM)
        llm = func.count(Subtask.id).filter(Subtask.executor == Executor.LLM)
        statement = (
            select(day, slm, llm)
            .join(Request, Request.id == Subtask.request_id)
            .where(Subtask.created_at >= since)
            .group_by(day)
            .order_by(day)
        )
        rows = self.session.execute(statement.where(*self._of(tenant_id))).all()
        return [DaySteps(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    def calls_per_day(self, tenant_id: uuid.UUID | None, since: datetime) -> list[DayCalls]:
        """Model calls made since ``since`` by UTC day: requests touched, cost, and the tokens an
        All-LLM run would have sent: per step, its cloud calls' tokens if it made any (a step the
        verify stage escalated counts its cloud call only), else its edge calls' tokens; a call
        outside any step counts as it is."""

        def tokens(column: Any, role: ModelRole) -> ColumnElement[Any]:
            return func.coalesce(func.sum(column).filter(ModelCall.role == role), 0)

        day = self._day(ModelCall.created_at).label("day")
        per_step = (
            select(
                day,
                func.coalesce(func.sum(ModelCall.cost_usd), 0.0).label("cost"),
                func.count(ModelCall.id).filter(ModelCall.role == ModelRole.CLOUD).label("cloud_calls"),
                tokens(ModelCall.tokens_in, ModelRole.EDGE).label("edge_in"),
                tokens(ModelCall.tokens_out, ModelRole.EDGE).label("edge_out"),
                tokens(ModelCall.tokens_in, ModelRole.CLOUD).label("cloud_in"),
                tokens(ModelCall.tokens_out, ModelRole.CLOUD).label("cloud_out"),
            )
            .join(Request, Request.id == ModelCall.request_id)
            .where(ModelCall.created_at >= since, *self._of(tenant_id))
            .group_by(day, func.coalesce(ModelCall.subtask_id, ModelCall.id))
            .subquery()
        )
        requests = (
            select(day, func.count(func.distinct(ModelCall.request_id)))
            .join(Request, Request.id == ModelCall.request_id)
            .where(ModelCall.created_at >= since, *self._of(tenant_id))
            .group_by(day)
        )
        touched = {str(row[0]): int(row[1]) for row in self.session.execute(requests)}
        cloud = per_step.c.cloud_calls > 0
        statement = (
            select(
                per_step.c.day,
                func.sum(per_step.c.cost),
                func.sum(case((cloud, per_step.c.cloud_in), else_=per_step.c.edge_in)),
                func.sum(case((cloud, per_step.c.cloud_out), else_=per_step.c.edge_out)),
            )
            .group_by(per_step.c.day)
            .order_by(per_step.c.day)
        )
        return [
            DayCalls(str(r[0]), touched.get(str(r[0]), 0), float(r[1] or 0.0), int(r[2] or 0), int(r[3] or 0))
            for r in self.session.execute(statement).all()
        ]

    def branch_counts(self, tenant_id: uuid.UUID | None, since: datetime) -> dict[str, tuple[int, int]]:
        """branch -> (decisions, steps they cover) since ``since``: a decision copied onto the
        steps it covers carries ``span_origin`` in its scores and counts as a step only (as
        :meth:`DecisionRepository.branch_counts` counts)."""
        statement = (
            select(Decision.branch, Decision.scores)
            .join(Request, Request.id == Decision.request_id)
            .where(Decision.created_at >= since)
        )
        counts: dict[str, tuple[int, int]] = {}
        for branch, scores in self.session.execute(statement.where(*self._of(tenant_id))):
            decisions, steps = counts.get(branch, (0, 0))
            counts[branch] = (decisions + int("span_origin" not in (scores or {})), steps + 1)
        return counts

    def spend_per_tenant(self, tenant_id: uuid.UUID | None, since: datetime) -> list[TenantSpend]:
        """Each tenant's calls since ``since``: requests touched and cost, most spent first."""
        cost = func.coalesce(func.sum(ModelCall.cost_usd), 0.0)
        statement = (
            select(Tenant.name, func.count(func.distinct(ModelCall.request_id)), cost)
            .select_from(ModelCall)
            .join(Request, Request.id == ModelCall.request_id)
            .join(Tenant, Tenant.id == Request.tenant_id)
            .where(ModelCall.created_at >= since)
            .group_by(Tenant.name)
            .order_by(cost.desc(), Tenant.name)
        )
        rows = self.session.execute(statement.where(*self._of(tenant_id))).all()
        return [TenantSpend(str(row[0]), int(row[1]), float(row[2])) for row in rows]
