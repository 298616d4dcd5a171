"""Training runs: at most one per (model, scheduled time), with a heartbeat while running."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import RunStatus
from hera_router.db.models import TrainingRun
from hera_router.db.repositories._dml import insert_if_absent, rows_changed

FINISHED_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED})


@dataclass(frozen=True, slots=True)
class RunStatusSummary:
    model_name: str
    status: RunStatus
    runs: int
    latest_at: datetime
    """Finish time of the latest run in this status (scheduled time if it has not finished)."""


class TrainingRunRepository:
    """Training runs keyed by (model_name, scheduled_for)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def start_run(self, model_name: str, scheduled_for: datetime) -> TrainingRun | None:
        """Claim the run for ``model_name`` at ``scheduled_for`` and mark it running.

        Returns None if the run already exists in any state: a second beat or a redelivered
        nightly task must not train twice, so the caller simply stops. Commit promptly, so a
        concurrent claimer waits on the unique key only briefly.
        """
        now = utcnow()
        created = insert_if_absent(
            self.session,
            TrainingRun,
            {
                "model_name": model_name,
                "scheduled_for": scheduled_for,
                "status": RunStatus.RUNNING,
                "started_at": now,
                "heartbeat_at": now,
            },
            ("model_name", "scheduled_for"),
        )
        return self.by_schedule(model_name, scheduled_for) if created else None

    def by_schedule(self, model_name: str, scheduled_for: datetime) -> TrainingRun | None:
        return self.session.scalars(
            select(TrainingRun).where(TrainingRun.model_name == model_name, TrainingRun.scheduled_for == scheduled_for)
        ).one_or_none()

    def get(self, run_id: uuid.UUID) -> TrainingRun | None:
        return self.session.get(TrainingRun, run_id)

    def latest(self, model_name: str) -> TrainingRun | None:
        """The most recently scheduled run of ``model_name``."""
        return self.session.scalars(
            select(TrainingRun)
            .where(TrainingRun.model_name == model_name)
            .order_by(TrainingRun.scheduled_for.desc())
            .limit(1)
        ).one_or_none()

    def status_summary(self) -> list[RunStatusSummary]:
        """Per model and status: how many runs, and when the latest of them finished (or, if it
        has not, was scheduled). Feeds the "nightly run failed or skipped" alerts."""
        rows = self.session.execute(
            select(
                TrainingRun.model_name,
                TrainingRun.status,
                func.count(),
                func.max(func.coalesce(TrainingRun.finished_at, TrainingRun.scheduled_for)),
            ).group_by(TrainingRun.model_name, TrainingRun.status)
        )
        return [RunStatusSummary(model, status, count, latest) for model, status, count, latest in rows]

    def heartbeat(self, run_id: uuid.UUID) -> bool:
        """Show the run is alive; False if it is no longer running (so the trainer can stop)."""
        result = self.session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.RUNNING)
            .values(heartbeat_at=utcnow())
        )
        return rows_changed(result) == 1

    def finish(
        self,
        run_id: uuid.UUID,
        status: RunStatus,
        *,
        metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Close a running run as succeeded, failed or skipped; False if it was not running."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"finish() needs a final status ({sorted(FINISHED_STATUSES)}), not {status!r}")
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if metrics is not None:
            values["metrics"] = dict(metrics)
        result = self.session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.RUNNING)
            .values(**values)
        )
        return rows_changed(result) == 1

    def record_progress(self, run_id: uuid.UUID, progress: Mapping[str, Any]) -> bool:
        """Heartbeat and replace the running run's ``metrics`` with ``progress`` (stage, counts);
        False if the run is no longer running (so the trainer stops)."""
        result = self.session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.RUNNING)
            .values(heartbeat_at=utcnow(), metrics=dict(progress))
        )
        return rows_changed(result) == 1

    def fail_running(
        self,
        model_name: str,
        reason: str,
        *,
        except_id: uuid.UUID | None = None,
        silent_since: datetime | None = None,
    ) -> list[uuid.UUID]:
        """Mark ``model_name``'s running runs failed with ``reason`` (their trainer died); returns
        their ids. ``silent_since`` limits it to runs whose last heartbeat is older than that."""
        statement = update(TrainingRun).where(
            TrainingRun.model_name == model_name, TrainingRun.status == RunStatus.RUNNING
        )
        if except_id is not None:
            statement = statement.where(TrainingRun.id != except_id)
        if silent_since is not None:
            statement = statement.where(func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at) < silent_since)
        result = self.session.execute(
            statement.values(status=RunStatus.FAILED, finished_at=utcnow(), error=reason).returning(TrainingRun.id)
        )
        return list(result.scalars())

    def recent(self, limit: int = 20, model_name: str | None = None) -> Sequence[TrainingRun]:
        """The latest runs (by scheduled time), newest first."""
        statement = select(TrainingRun).order_by(TrainingRun.scheduled_for.desc(), TrainingRun.created_at.desc())
        if model_name is not None:
            statement = statement.where(TrainingRun.model_name == model_name)
        return self.session.scalars(statement.limit(limit)).all()
