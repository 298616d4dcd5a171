"""Shadow runs: sampled live requests re-run as profiling trees, and the labels they yield."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import RunStatus
from hera_router.db.models import ProfileNode, ShadowRun
from hera_router.db.repositories._dml import insert_if_absent, rows_changed


class ShadowRunRepository:
    """One shadow run per request; its tree lives in ``profile_nodes`` under ``profile_run_id``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, request_id: uuid.UUID) -> bool:
        """Claim the shadow run of ``request_id`` (status running); False if it already exists.

        Commit promptly: the claim is what keeps a redelivered task from paying for a second tree.
        """
        return insert_if_absent(
            self.session,
            ShadowRun,
            {"request_id": request_id, "status": RunStatus.RUNNING},
            ("request_id",),
        )

    def release(self, request_id: uuid.UUID) -> None:
        """Drop an unfinished claim, so a retried task can claim the request again."""
        self.session.execute(
            delete(ShadowRun).where(ShadowRun.request_id == request_id, ShadowRun.status == RunStatus.RUNNING)
        )

    def by_request(self, request_id: uuid.UUID) -> ShadowRun | None:
        return self.session.scalars(select(ShadowRun).where(ShadowRun.request_id == request_id)).one_or_none()

    def finish(
        self,
        request_id: uuid.UUID,
        status: RunStatus,
        *,
        profile_run_id: uuid.UUID | None = None,
        cost_usd: float = 0.0,
        nodes: int = 0,
        reason: str | None = None,
    ) -> bool:
        """Close the running shadow run of ``request_id``; False if it was not running."""
        result = self.session.execute(
            update(ShadowRun)
            .where(ShadowRun.request_id == request_id, ShadowRun.status == RunStatus.RUNNING)
            .values(
                status=status,
                profile_run_id=profile_run_id,
                cost_usd=cost_usd,
                nodes=nodes,
                reason=reason,
                finished_at=utcnow(),
            )
        )
        return rows_changed(result) == 1

    def spent_since(self, since: datetime) -> float:
        """Shadow cost of the runs finished (or still running) since ``since``."""
        total = self.session.scalar(
            select(func.coalesce(func.sum(ShadowRun.cost_usd), 0.0)).where(ShadowRun.created_at >= since)
        )
        return float(total or 0.0)

    def labelled_since(self, after: datetime | None, limit: int) -> Sequence[ShadowRun]:
        """Succeeded shadow runs finished after ``after`` (all if None), newest first, at most ``limit``."""
        statement = select(ShadowRun).where(
            ShadowRun.status == RunStatus.SUCCEEDED, ShadowRun.profile_run_id.is_not(None)
        )
        if after is not None:
            statement = statement.where(ShadowRun.finished_at > after)
        return self.session.scalars(statement.order_by(ShadowRun.finished_at.desc()).limit(limit)).all()

    def nodes(self, profile_run_ids: Sequence[uuid.UUID]) -> Sequence[ProfileNode]:
        """The tree nodes of these shadow runs, parents before children within each request."""
        if not profile_run_ids:
            return []
        return self.session.scalars(
            select(ProfileNode)
            .where(ProfileNode.run_id.in_(profile_run_ids))
            .order_by(ProfileNode.request_key, ProfileNode.depth, ProfileNode.created_at, ProfileNode.id)
        ).all()

    def counts(self) -> dict[RunStatus, int]:
        rows = self.session.execute(select(ShadowRun.status, func.count()).group_by(ShadowRun.status))
        return {RunStatus(status): int(count) for status, count in rows}
