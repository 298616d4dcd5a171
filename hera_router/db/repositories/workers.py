"""Worker heartbeats, and the running steps whose worker stopped beating."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import SubtaskStatus
from hera_router.db.models import Subtask, Worker


class WorkerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def beat(self, name: str, started_at: datetime) -> None:
        """Insert or refresh the worker's heartbeat."""
        now = utcnow()
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Worker).values(name=name, started_at=started_at, heartbeat_at=now)
        self.session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"heartbeat_at": now}))

    def remove(self, name: str) -> None:
        """A worker that stops cleanly says so: its steps need not wait for the timeout."""
        self.session.execute(delete(Worker).where(Worker.name == name))

    def orphaned_steps(self, stale_before: datetime, limit: int = 200) -> Sequence[Subtask]:
        """Running steps nobody has touched since ``stale_before``: their claimer died, or gave the
        step up (a heartbeat touches every step its process is still working on)."""
        return self.session.scalars(
            select(Subtask)
            .where(Subtask.status == SubtaskStatus.RUNNING, Subtask.updated_at < stale_before)
            .order_by(Subtask.updated_at)
            .limit(limit)
        ).all()

    def forget_older_than(self, cutoff: datetime) -> int:
        """Drop workers not seen since ``cutoff`` (processes long gone)."""
        result = self.session.execute(delete(Worker).where(Worker.heartbeat_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
