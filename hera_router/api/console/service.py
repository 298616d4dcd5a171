"""The console's reads, scoped to the viewer: the operator sees every tenant, a tenant key only
its own tenant (another tenant's request or batch reads as absent, which the routes answer 404).

Request and batch pages reuse the API's views (``RequestViews``); the lists and the overview read
``ConsoleRepository``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.console.schemas import (
    BatchRow,
    BranchCount,
    ConsoleBatch,
    ConsoleRequest,
    DayPoint,
    EstimatorRow,
    FailedLine,
    Overview,
    RequestRow,
    TenantSpendRow,
    Viewer,
)
from hera_router.api.console.steps import console_steps
from hera_router.api.views import RequestViews
from hera_router.config import Settings
from hera_router.db.base import utcnow
from hera_router.db.enums import RequestStatus
from hera_router.db.models import Batch, Request
from hera_router.db.repositories import EstimatorVersionRepository
from hera_router.db.repositories.console import ConsoleRepository, DayCalls, DaySteps, Owner
from hera_router.db.session import session_scope

INPUT_PREVIEW_CHARS = 200
FAILED_LINES_SHOWN = 200
_PER_TOKEN = 1e-6


class ConsoleService:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], views: RequestViews) -> None:
        self.settings = settings
        self.sessions = sessions
        self.views = views

    def requests(self, viewer: Viewer, limit: int, status: RequestStatus | None = None) -> list[RequestRow]:
        with session_scope(self.sessions) as session:
            rows = ConsoleRepository(session).recent_requests(viewer.tenant_id, limit, status)
            return [
                RequestRow(
                    id=request.id,
                    tenant=tenant,
                    batch_id=request.batch_id,
                    custom_id=request.custom_id,
                    status=request.status,
                    policy=request.policy,
                    input=request.input[:INPUT_PREVIEW_CHARS],
                    slm_steps=request.slm_steps,
                    llm_steps=request.llm_steps,
                    cost_usd=request.cost_usd,
                    created_at=request.created_at,
                )
                for request, tenant in rows
            ]

    def request(self, viewer: Viewer, request_id: uuid.UUID) -> ConsoleRequest | None:
        tenant = self._owner(Request, request_id, viewer)
        if tenant is None:
            return None
        detail = self.views.request_detail(tenant.id, request_id)
        if detail is None:
            return None
        return ConsoleRequest(
            tenant=tenant.name, detail=detail, steps=console_steps(detail, self.settings.routing.tau_req)
        )

    def batches(self, viewer: Viewer, limit: int) -> list[BatchRow]:
        with session_scope(self.sessions) as session:
            return [
                BatchRow(
                    id=batch.id,
                    tenant=tenant,
                    name=batch.name,
                    policy=batch.policy,
                    accepted=batch.accepted,
                    rejected=len(batch.rejected),
                    cancelled=batch.cancelled_at is not None,
                    created_at=batch.created_at,
                )
                for batch, tenant in ConsoleRepository(session).recent_batches(viewer.tenant_id, limit)
            ]

    def batch(self, viewer: Viewer, batch_id: uuid.UUID) -> ConsoleBatch | None:
        tenant = self._owner(Batch, batch_id, viewer)
        if tenant is None:
            return None
        status = self.views.batch_status(tenant.id, batch_id)
        if status is None:
            return None
        with session_scope(self.sessions) as session:
            failed = [
                FailedLine(request_id=r.id, custom_id=r.custom_id, error=r.error)
                for r in ConsoleRepository(session).failed_in_batch(batch_id, FAILED_LINES_SHOWN)
            ]
        return ConsoleBatch(tenant=tenant.name, status=status, failed=failed)

    def overview(self, viewer: Viewer, days: int, now: datetime | None = None) -> Overview:
        """The last ``days`` UTC days (today included) of routing, cost and registry."""
        moment = now or utcnow()
        since = moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
        with session_scope(self.sessions) as session:
            console = ConsoleRepository(session)
            steps = console.steps_per_day(viewer.tenant_id, since)
            points = self._days(steps, console.calls_per_day(viewer.tenant_id, since))
            branches = console.branch_counts(viewer.tenant_id, since)
            tenants = console.spend_per_tenant(viewer.tenant_id, since)
            estimators = [
                EstimatorRow(
                    name=row.name,
                    version=row.version,
                    status=row.status.value,
                    created_at=row.created_at,
                    promoted_at=row.promoted_at,
                    calibration=_numeric(row.metrics),
                )
                for row in EstimatorVersionRepository(session).list_all()
            ]
        slm, llm = sum(p.slm_steps for p in points), sum(p.llm_steps for p in points)
        return Overview(
            since=since,
            days=points,
            slm_steps=slm,
            llm_steps=llm,
            slm_share=slm / (slm + llm) if slm + llm else None,
            cost_usd=sum(p.cost_usd for p in points),
            all_llm_usd=sum(p.all_llm_usd for p in points),
            cloud_model=self.settings.cloud.model,
            branches=[
                BranchCount(branch=branch, decisions=decisions, steps=steps)
                for branch, (decisions, steps) in sorted(branches.items(), key=lambda item: (-item[1][1], item[0]))
            ],
            tenants=[TenantSpendRow(tenant=t.tenant, requests=t.requests, cost_usd=t.cost_usd) for t in tenants],
            estimators=estimators,
        )

    def _days(self, steps: list[DaySteps], calls: list[DayCalls]) -> list[DayPoint]:
        price = self.settings.price_of(self.settings.cloud.model)
        by_day = {c.day: c for c in calls}
        step_days = {s.day: s for s in steps}
        points = []
        for day in sorted(set(by_day) | set(step_days)):
            call = by_day.get(day, DayCalls(day, 0, 0.0, 0, 0))
            step = step_days.get(day, DaySteps(day, 0, 0))
            tokens_in, tokens_out = call.all_llm_tokens_in, call.all_llm_tokens_out
            total = step.slm_steps + step.llm_steps
            points.append(
                DayPoint(
                    day=day,
                    requests=call.requests,
                    slm_steps=step.slm_steps,
                    llm_steps=step.llm_steps,
                    slm_share=step.slm_steps / total if total else None,
                    cost_usd=call.cost_usd,
                    all_llm_usd=(tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) * _PER_TOKEN,
                )
            )
        return points

    def _owner(self, kind: type[Request] | type[Batch], object_id: uuid.UUID, viewer: Viewer) -> Owner | None:
        """The tenant owning the request or batch, if the viewer may see it."""
        with session_scope(self.sessions) as session:
            owner = ConsoleRepository(session).owner(kind, object_id)
        if owner is None or (viewer.tenant_id is not None and owner.id != viewer.tenant_id):
            return None
        return owner


def _numeric(metrics: dict[str, object]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in sorted(metrics.items())
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
