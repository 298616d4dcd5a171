"""Publishing through the transactional outbox.

Work that must not be lost is written as an outbox row in the same transaction as the state
change that calls for it (:meth:`Dispatcher.enqueue`). After the commit the caller publishes those
rows straight away (:meth:`Dispatcher.publish`), which keeps a hop fast; if that publish fails or
the process dies first, the relay (:meth:`Dispatcher.relay`, run periodically) publishes them
later. A message may therefore be published twice, with the same deterministic task id; every
task is idempotent, so the second delivery finds nothing to do.

Marking a row published costs no statement on the hop that sent it: the ids sent are remembered
and marked in batches, by a background flush well inside the relay's grace period, or, once a
batch (:attr:`Dispatcher.MARK_BATCH`) has piled up, by the next transaction this process runs
anyway (:meth:`Dispatcher.marking`, used by every hop). A mark that never lands (the process
died) only means the relay sends that message once more.

The dispatcher knows nothing of Celery: it sends through a :data:`Publish` callable
(``hera_router.workers.publisher`` builds one on a Celery app; unit tests pass one that records).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.base import utcnow
from hera_router.db.repositories.outbox import OutboxRepository
from hera_router.db.session import PIPELINED_OPTION, session_scope

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
    MARK_BATCH = 32
    """Sent rows a hop's transaction marks published at once. Fewer wait for the background
    flush: one UPDATE per batch instead of one per hop (a quiet hop spends no statement on it)."""

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
        # Sent but not yet marked published: id -> when it was sent (monotonic seconds).
        self._unmarked: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._flusher_pid: int | None = None
        # The idle flush marks what waited this long: well inside the relay's grace period.
        self.mark_after_s = max(0.05, relay_grace_s / 4)

    def enqueue(self, session: Session, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> uuid.UUID:
        """Record ``task_name(**kwargs)`` for publishing once ``session`` commits.

        Adding the same ``task_id`` twice keeps the first row (a redelivered task re-enqueueing its
        next hop changes nothing). In a pipelined transaction (Postgres, the hops' sessions,
        ``db/session.py``) the row's INSERT goes out with the ``COMMIT`` and nobody waits for it to
        say whether the row was new: a redelivered hop then sends its next hop's message once more,
        which that hop's guards absorb (``OutboxRepository.add_deferred``).
        """
        outbox = OutboxRepository(session)
        if session.get_bind().get_execution_options().get(PIPELINED_OPTION):
            message_id, published = outbox.add_deferred(task_name, kwargs, task_id), False
        else:
            message_id, published = outbox.add_or_find(task_name, kwargs, task_id)
        if not published:
            with self._lock:
                self._pending[message_id] = _Message(str(task_name), dict(kwargs), task_id)
                while len(self._pending) > self.PENDING_LIMIT:
                    self._pending.popitem(last=False)
        return message_id

    # -- marking rows published, in transactions that run anyway ---------------------------------

    def _take_marks(self, older_than_s: float | None = None) -> list[uuid.UUID]:
        with self._lock:
            if older_than_s is None:
                taken = list(self._unmarked)
                self._unmarked.clear()
                return taken
            cutoff = time.monotonic() - older_than_s
            taken = [message_id for message_id, sent in self._unmarked.items() if sent <= cutoff]
            for message_id in taken:
                del self._unmarked[message_id]
            return taken

    def _restore_marks(self, message_ids: Collection[uuid.UUID]) -> None:
        now = time.monotonic()
        with self._lock:
            for message_id in message_ids:
                self._unmarked.setdefault(message_id, now)

    @contextlib.contextmanager
    def marking(self, session: Session) -> Iterator[None]:
        """Once a batch of sent rows waits, mark them published in ``session``'s transaction (when
        it commits); if the block raises, the marks wait for the next transaction."""
        with self._lock:
            batch_ready = len(self._unmarked) >= self.MARK_BATCH
        taken = self._take_marks() if batch_ready else []
        try:
            yield
            if taken:
                OutboxRepository(session).mark_published(taken)
                session.flush()
        except BaseException:
            self._restore_marks(taken)
            raise

    def mark_delivered(self, session: Session, message_ids: Collection[uuid.UUID]) -> None:
        """Rows delivered in-process, never sent: published as far as the relay is concerned."""
        if message_ids:
            with self._lock:
                for message_id in message_ids:
                    self._pending.pop(message_id, None)
            OutboxRepository(session).mark_published(message_ids)

    def flush_marks(self, older_than_s: float | None = None) -> int:
        """Mark sent rows published in a transaction of their own; returns how many were marked."""
        taken = self._take_marks(older_than_s)
        if not taken:
            return 0
        try:
            with session_scope(self._sessions()) as session:
                OutboxRepository(session).mark_published(taken)
        except Exception:  # the database is away: keep them for the next try (the relay may resend)
            self._restore_marks(taken)
            log.debug("marking %d outbox rows published failed; will retry", len(taken), exc_info=True)
            return 0
        return len(taken)

    def _remember_sent(self, message_ids: Collection[uuid.UUID]) -> None:
        now = time.monotonic()
        with self._lock:
            for message_id in message_ids:
                self._unmarked[message_id] = now
            if self._flusher is None or self._flusher_pid != os.getpid() or not self._flusher.is_alive():
                # Per process: a forked child does not inherit the parent's thread.
                self._flusher_pid = os.getpid()
                self._flusher = threading.Thread(target=self._flush_forever, name="hera-outbox-marks", daemon=True)
                self._flusher.start()
                atexit.register(self.flush_marks)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.mark_after_s)
            self.flush_marks(older_than_s=self.mark_after_s)

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
            self._remember_sent(sent)
        return len(sent)

    RELAY_CHUNK = 50
    """Rows per relay transaction: the claim's locks are held while they are sent, so keep it short."""

    def relay(self, limit: int = 500) -> int:
        """Publish up to ``limit`` unpublished rows older than the grace period; returns how many.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on Postgres, so several relays can run
        without publishing the same row at the same moment, and in chunks of short transactions
        so that no claim holds its locks (on SQLite: the database's write lock) for long.
        """
        self.flush_marks()  # what this process sent itself is not the relay's to send again
        grace = timedelta(seconds=self.relay_grace_s)
        published = 0
        while published < limit:
            sent = 0
            with session_scope(self._sessions()) as session:
                outbox = OutboxRepository(session)
                size = min(self.RELAY_CHUNK, limit - published)
                chunk = outbox.claim_unpublished(size, created_before=utcnow() - grace)
                done: list[uuid.UUID] = []
                for message in chunk:
                    try:
                        self._publish(message.task_name, message.payload, message.task_id)
                    except PublishError as exc:
                        outbox.mark_failed(message.id, f"{type(exc).__name__}: {exc}")
                        continue
                    done.append(message.id)
                outbox.mark_published(done)
                sent = len(done)
            published += sent
            if len(chunk) < size or sent == 0:
                return published
        return published
