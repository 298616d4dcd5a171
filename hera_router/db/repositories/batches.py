"""Batches and the progress of their requests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import exists, func, select, tuple_, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import ACTIVE_REQUEST_STATUSES, RequestStatus
from hera_router.db.models import Batch, Request
from hera_router.db.repositories._dml import rows_changed


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counts per request status and the cost so far, computed from the requests."""

    counts: dict[RequestStatus, int]
    cost_usd: float
    slm_steps: int
    llm_steps: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.total - sum(self.counts.get(status, 0) for status in ACTIVE_REQUEST_STATUSES)


class BatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        tenant_id: uuid.UUID,
        policy: str,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        rejected: Sequence[dict[str, Any]] = (),
    ) -> Batch:
        batch = Batch(
            tenant_id=tenant_id, policy=policy, name=name, meta=meta or {}, rejected=list(rejected), accepted=0
        )
        self.session.add(batch)
        self.session.flush()
        return batch

    def set_accepted(self, batch_id: uuid.UUID, accepted: int) -> None:
        self.session.execute(update(Batch).where(Batch.id == batch_id).values(accepted=accepted))

    def get(self, batch_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> Batch | None:
        """The batch, or None if it does not exist or belongs to another tenant."""
        batch = self.session.get(Batch, batch_id)
        if batch is None or (tenant_id is not None and batch.tenant_id != tenant_id):
            return None
        return batch

    def page_for_tenant(
        self,
        tenant_id: uuid.UUID,
        *,
        before: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 50,
        state: Literal["active", "finished", "cancelled"] | None = None,
    ) -> Sequence[Batch]:
        """The tenant's batches, newest first, older than the ``(created_at, id)`` cursor.

        ``state``: ``active`` (some request queued or running), ``finished`` (none is),
        ``cancelled`` (cancelled by the client).
        """
        statement = select(Batch).where(Batch.tenant_id == tenant_id)
        unfinished = exists().where(Request.batch_id == Batch.id, Request.status.in_(list(ACTIVE_REQUEST_STATUSES)))
        if state == "active":
            statement = statement.where(unfinished)
        elif state == "finished":
            statement = statement.where(~unfinished)
        elif state == "cancelled":
            statement = statement.where(Batch.cancelled_at.is_not(None))
        if before is not None:
            statement = statement.where(tuple_(Batch.created_at, Batch.id) < tuple_(*before))
        return self.session.scalars(statement.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)).all()

    def progress(self, batch_id: uuid.UUID) -> BatchProgress:
        rows = self.session.execute(
            select(
                Request.status,
                func.count(),
                func.coalesce(func.sum(Request.cost_usd), 0.0),
                func.coalesce(func.sum(Request.slm_steps), 0),
                func.coalesce(func.sum(Request.llm_steps), 0),
            )
            .where(Request.batch_id == batch_id)
            .group_by(Request.status)
        ).all()
        return BatchProgress(
            counts={status: count for status, count, *_ in rows},
            cost_usd=float(sum(row[2] for row in rows)),
            slm_steps=int(sum(row[3] for row in rows)),
            llm_steps=int(sum(row[4] for row in rows)),
        )

    def cancel(self, batch_id: uuid.UUID) -> int:
        """Mark the batch cancelled and cancel its active requests; returns how many were cancelled."""
        self.session.execute(
            update(Batch).where(Batch.id == batch_id, Batch.cancelled_at.is_(None)).values(cancelled_at=utcnow())
        )
        active = Request.batch_id == batch_id, Request.status.in_(list(ACTIVE_REQUEST_STATUSES))
        ids = list(self.session.scalars(select(Request.id).where(*active)).all())
        result = self.session.execute(
            update(Request).where(*active).values(status=RequestStatus.CANCELLED, error="cancelled with its batch")
        )
        if ids:  # the node requests of graph requests in the batch have no batch of their own
            from hera_router.db.repositories.requests import RequestRepository

            RequestRepository(self.session).cancel_nodes(ids)
        return rows_changed(result)
