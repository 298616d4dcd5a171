"""The transactional outbox: tasks to publish, written with the state that needs them."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, true, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.models import OutboxMessage
from hera_router.db.repositories._dml import insert_if_absent, insert_if_absent_deferred, rows_changed, table_of

_OUTBOX = table_of(OutboxMessage)
_FIND = select(_OUTBOX.c.id, _OUTBOX.c.published_at).where(_OUTBOX.c.task_id == bindparam("task_id"))
_MARK_PUBLISHED = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)), _OUTBOX.c.published_at.is_(None))
    .values(published_at=bindparam("now"), attempts=_OUTBOX.c.attempts + 1, last_error=None)
)


class OutboxRepository:
    """Outbox rows: add in the business transaction, claim and mark in the relay's."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, task_name: str, payload: Mapping[str, Any], task_id: str) -> tuple[OutboxMessage, bool]:
        """Queue ``task_name(**payload)`` for publishing as Celery task ``task_id``; ``(row, created)``.

        ``task_id`` is deterministic (e.g. derived from request id and step), so adding the same
        message twice keeps one row; the first payload wins.
        """
        created = insert_if_absent(
            self.session,
            OutboxMessage,
            {"task_name": task_name, "payload": dict(payload), "task_id": task_id},
            ("task_id",),
        )
        message = self.by_task_id(task_id)
        if message is None:  # pragma: no cover - the insert or the conflict guarantees a row
            raise LookupError(f"outbox message {task_id!r} vanished after insert")
        return message, created

    def add_or_find(self, task_name: str, payload: Mapping[str, Any], task_id: str) -> tuple[uuid.UUID, bool]:
        """Like :meth:`add`, for the hot path: ``(id, published)`` in one statement when the row is
        new (the common case), two when ``task_id`` was queued before."""
        inserted = insert_if_absent(
            self.session,
            OutboxMessage,
            {"task_name": task_name, "payload": dict(payload), "task_id": task_id},
            ("task_id",),
            returning=(OutboxMessage.id,),
        )
        if inserted is not None:
            return inserted[0], False
        row = self.session.execute(_FIND, {"task_id": task_id}).one()
        return row.id, row.published_at is not None

    def add_deferred(self, task_name: str, payload: Mapping[str, Any], task_id: str) -> uuid.UUID:
        """Like :meth:`add_or_find` without waiting for the answer: the row's id is chosen here and
        the INSERT (``ON CONFLICT DO NOTHING``) goes out with the transaction's next statement or
        its ``COMMIT`` in a pipelined transaction (``db/session.py``).

        If ``task_id`` was queued before (a redelivered hop), nothing is inserted and the id
        returned names no row: the caller publishes the message once more (its consumer finds
        nothing to do) and marking that id published changes nothing."""
        message_id = uuid.uuid4()
        insert_if_absent_deferred(
            self.session,
            OutboxMessage,
            {"id": message_id, "task_name": task_name, "payload": dict(payload), "task_id": task_id},
            ("task_id",),
        )
        return message_id

    def add_many(self, messages: Sequence[tuple[str, Mapping[str, Any], str]]) -> list[uuid.UUID]:
        """Queue many new messages ``(task_name, payload, task_id)`` in one statement; their ids.

        For task ids that cannot exist yet (the first hop of requests inserted in the same
        transaction): unlike :meth:`add` a duplicate task id raises instead of being skipped.
        """
        message_ids = [uuid.uuid4() for _ in messages]
        rows = [
            {"id": message_id, "task_name": name, "payload": dict(payload), "task_id": task_id}
            for message_id, (name, payload, task_id) in zip(message_ids, messages, strict=True)
        ]
        if rows:
            self.session.execute(insert(OutboxMessage), rows)
        return message_ids

    def reopen(self, task_name: str, payload: Mapping[str, Any], task_id: str) -> OutboxMessage:
        """Queue ``task_id`` for publishing again, adding it if it was never queued.

        The reconciler's re-drive: the broker may have lost a message the relay already marked
        published. Publishing again under the same task id is safe because consumers are
        idempotent; the payload is replaced with the one given.
        """
        message, created = self.add(task_name, payload, task_id)
        if not created:
            self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(task_name=task_name, payload=dict(payload), published_at=None)
            )
            self.session.refresh(message)
        return message

    def by_ids(self, message_ids: Collection[uuid.UUID]) -> Sequence[OutboxMessage]:
        """The given messages (published or not), oldest first; unknown ids are skipped."""
        if not message_ids:
            return []
        return self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(list(message_ids)))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()

    def by_task_id(self, task_id: str) -> OutboxMessage | None:
        return self.session.scalars(select(OutboxMessage).where(OutboxMessage.task_id == task_id)).one_or_none()

    def claim_unpublished(self, limit: int = 100, *, created_before: datetime | None = None) -> Sequence[OutboxMessage]:
        """Lock up to ``limit`` unpublished messages, oldest first, for this transaction.

        ``created_before`` leaves young rows alone: their writer is probably publishing them right
        now (it does so right after its commit), and the relay is only for what that missed.

        On Postgres ``FOR UPDATE SKIP LOCKED`` lets several relays run without publishing the same
        row concurrently: each skips rows another holds. SQLite has no row locks and SQLAlchemy
        omits the clause there; its transactions are serialised (``BEGIN IMMEDIATE``) instead.
        The claim lasts until the caller's transaction ends, so publish, mark and commit in it.
        """
        return self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.published_at.is_(None),
                OutboxMessage.created_at < created_before if created_before is not None else true(),
            )
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()

    def mark_published(self, message_ids: Collection[uuid.UUID]) -> int:
        """Mark messages as published; returns how many were still unpublished."""
        if not message_ids:
            return 0
        return rows_changed(self.session.execute(_MARK_PUBLISHED, {"ids": list(message_ids), "now": utcnow()}))

    def mark_failed(self, message_id: uuid.UUID, error: str) -> None:
        """Count a failed publish attempt; the row stays unpublished and is retried next round."""
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(attempts=OutboxMessage.attempts + 1, last_error=error)
        )

    def oldest_unpublished_at(self) -> datetime | None:
        """Creation time of the oldest unpublished message (outbox lag), or None if empty."""
        return self.session.scalar(
            select(OutboxMessage.created_at)
            .where(OutboxMessage.published_at.is_(None))
            .order_by(OutboxMessage.created_at)
            .limit(1)
        )
