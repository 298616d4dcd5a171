"""Publishing through the transactional outbox.

Work that must not be lost is written as an outbox row in the same transaction as the state
change that calls for it (:meth:`Dispatcher.enqueue`). After the commit the caller publishes those
rows straight away (:meth:`Dispatcher.publish`), which keeps a hop fast; if that publish fails or
the process dies first, the relay (:meth:`Dispatcher.relay`, run periodically) publishes them
later. A message may therefore be published twice, with the same deterministic task id; every
task is idempotent, so the second delivery finds nothing to do.

The dispatcher knows nothing of Celery: it sends through a :data:`Publish` callable
(``hera_router.workers.publisher`` builds one on a Celery app; unit tests pass one that records).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.base import utcnow
from hera_router.db.repositories.outbox import OutboxRepository
from hera_router.db.session import session_scope

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker did not take a message (down, unreachable); the relay will send it later."""


Publish = Callable[[str, Mapping[str, Any], str], None]
"""``publish(task_name, kwargs, task_id)``: hand one message to the broker or raise PublishError."""


class _Message(NamedTuple):
    task_name: str
    kwargs: dict[str, Any]
    task_id: str


class Dispatcher:
    PENDING_LIMIT = 10_000
    """Payloads remembered between enqueue and publish; older ones are read back from the outbox."""

    def __init__(
        self, sessions: Callable[[], sessionmaker[Session]], publish: Publish, *, relay_grace_s: float = 5.0
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self.relay_grace_s = relay_grace_s
        # What enqueue wrote, so that publishing right after the commit needs no read transaction
        # (one fewer transaction per hop; on SQLite one fewer wait for the write lock). Entries of
        # a transaction that rolled back are never published and age out of the bounded map.
        self._pending: OrderedDict[uuid.UUID, _Message] = OrderedDict()
        self._lock = threading.Lock()

    def enqueue(self, session: Session, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> uuid.UUID:
        """Record ``task_name(**kwargs)`` for publishing once ``session`` commits.

        Adding the same ``task_id`` twice keeps the first row (a redelivered task re-enqueueing its
        next hop changes nothing).
        """
        message, _ = OutboxRepository(session).add(task_name, kwargs, task_id)
        if message.published_at is None:
            with self._lock:
                self._pending[message.id] = _Message(message.task_name, dict(message.payload), message.task_id)
                while len(self._pending) > self.PENDING_LIMIT:
                    self._pending.popitem(last=False)
        return message.id

    def publish(self, message_ids: Collection[uuid.UUID]) -> int:
        """Publish committed outbox rows now; returns how many went out.

        A failure is logged and left to the relay: the caller's work is already durable.
        """
        if not message_ids:
            return 0
        sessions = self._sessions()
        messages: dict[uuid.UUID, _Message] = {}
        with self._lock:
            for message_id in message_ids:
                if (known := self._pending.pop(message_id, None)) is not None:
                    messages[message_id] = known
        unknown = [message_id for message_id in message_ids if message_id not in messages]
        if unknown:
            with session_scope(sessions) as session:
                for row in OutboxRepository(session).by_ids(unknown):
                    if row.published_at is None:
                        messages[row.id] = _Message(row.task_name, dict(row.payload), row.task_id)
        sent: list[uuid.UUID] = []
        for message_id, message in messages.items():
            try:
                self._publish(message.task_name, message.kwargs, message.task_id)
            except PublishError as exc:
                log.warning("publishing %s failed, the relay will retry: %s", message.task_id, exc)
                continue
            sent.append(message_id)
        if sent:
            with session_scope(sessions) as session:
                OutboxRepository(session).mark_published(sent)
        return len(sent)

    RELAY_CHUNK = 50
    """Rows per relay transaction: the claim's locks are held while they are sent, so keep it short."""

    def relay(self, limit: int = 500) -> int:
        """Publish up to ``limit`` unpublished rows older than the grace period; returns how many.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on Postgres, so several relays can run
        without publishing the same row at the same moment, and in chunks of short transactions
        so that no claim holds its locks (on SQLite: the database's write lock) for long.
        """
        grace = timedelta(seconds=self.relay_grace_s)
        published = 0
        while published < limit:
            sent = 0
            with session_scope(self._sessions()) as session:
                outbox = OutboxRepository(session)
                size = min(self.RELAY_CHUNK, limit - published)
                chunk = outbox.claim_unpublished(size, created_before=utcnow() - grace)
                for message in chunk:
                    try:
                        self._publish(message.task_name, message.payload, message.task_id)
                    except PublishError as exc:
                        outbox.mark_failed(message.id, f"{type(exc).__name__}: {exc}")
                        continue
                    outbox.mark_published([message.id])
                    sent += 1
            published += sent
            if len(chunk) < size or sent == 0:
                return published
        return published
