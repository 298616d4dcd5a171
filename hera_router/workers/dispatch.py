"""Publishing through the transactional outbox.

Work that must not be lost is written as an outbox row in the same transaction as the state
change that calls for it (:meth:`Dispatcher.enqueue`). After the commit the caller publishes those
rows straight away (:meth:`Dispatcher.publish`), which keeps a hop fast; if that publish fails or
the process dies first, the relay (:meth:`Dispatcher.relay`, run periodically) publishes them
later. A message may therefore be published twice, with the same deterministic task id; every
task is idempotent, so the second delivery finds nothing to do.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.orm import Session

from hera_router.db.repositories.outbox import OutboxRepository
from hera_router.db.session import session_scope
from hera_router.workers.app import HeraCelery

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, app: HeraCelery) -> None:
        self.app = app

    @staticmethod
    def enqueue(session: Session, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> uuid.UUID:
        """Record ``task_name(**kwargs)`` for publishing once ``session`` commits.

        Adding the same ``task_id`` twice keeps the first row (a redelivered task re-enqueueing its
        next hop changes nothing).
        """
        message, _ = OutboxRepository(session).add(task_name, kwargs, task_id)
        return message.id

    def _send(self, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> None:
        self.app.send_task(task_name, kwargs=dict(kwargs), task_id=task_id)

    def publish(self, message_ids: Collection[uuid.UUID]) -> int:
        """Publish committed outbox rows now; returns how many went out.

        A failure is logged and left to the relay: the caller's work is already durable.
        """
        if not message_ids:
            return 0
        sessions = self.app.hera_runtime.sessions
        with session_scope(sessions) as session:
            outbox = OutboxRepository(session)
            messages = [m for m in outbox.by_ids(message_ids) if m.published_at is None]
        sent: list[uuid.UUID] = []
        for message in messages:
            try:
                self._send(message.task_name, message.payload, message.task_id)
            except BrokerOperationalError as exc:
                log.warning("publishing %s failed, the relay will retry: %s", message.task_id, exc)
                continue
            sent.append(message.id)
        if sent:
            with session_scope(sessions) as session:
                OutboxRepository(session).mark_published(sent)
        return len(sent)

    def relay(self, limit: int = 100) -> int:
        """Publish up to ``limit`` unpublished rows, oldest first; returns how many went out.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on Postgres, so several relays can run
        without publishing the same row at the same moment.
        """
        published = 0
        with session_scope(self.app.hera_runtime.sessions) as session:
            outbox = OutboxRepository(session)
            for message in outbox.claim_unpublished(limit):
                try:
                    self._send(message.task_name, message.payload, message.task_id)
                except BrokerOperationalError as exc:
                    outbox.mark_failed(message.id, f"{type(exc).__name__}: {exc}")
                    continue
                outbox.mark_published([message.id])
                published += 1
        return published
