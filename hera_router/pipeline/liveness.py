"""Worker liveness: each process that claims steps keeps the steps it is working on fresh.

A daemon thread of the claiming process itself (a prefork child, or a threads-pool worker),
started at its first claim, touches every step this process holds (``subtasks.updated_at``) and
its own row in ``workers`` every ``HERA_WORKER_HEARTBEAT_S``. So "the step is alive" means "the
process that claimed it is alive and still on it": a process that is killed, or a task that gave a
step up on an error (its retry then finds the step running and skips), stops touching it, and the
reconciler gives it back within ``HERA_WORKER_TIMEOUT_S`` (``WorkerRepository.orphaned_steps``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.base import utcnow
from hera_router.db.repositories import SubtaskRepository, WorkerRepository
from hera_router.db.session import session_scope

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, sessions: Callable[[], sessionmaker[Session]], interval_s: float) -> None:
        self._sessions = sessions
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._started_at: datetime | None = None
        self._name = ""
        self._stop = threading.Event()
        self._held: dict[uuid.UUID, int] = {}

    @contextlib.contextmanager
    def holding(self, subtask_id: uuid.UUID) -> Iterator[None]:
        """Keep ``subtask_id`` fresh while the block runs (its model call and completion)."""
        self._ensure()
        with self._lock:
            self._held[subtask_id] = self._held.get(subtask_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held.pop(subtask_id, 1) - 1
                if left > 0:
                    self._held[subtask_id] = left

    @property
    def name(self) -> str:
        """``host:pid`` of this process (a forked child gets its own)."""
        self._ensure()
        return self._name

    def _ensure(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # ``_pid`` last: a thread that sees it set outside the lock must see the name too.
            self._name, self._started_at = f"{socket.gethostname()}:{pid}", utcnow()
            self._stop = threading.Event()
            self._pid = pid
            thread = threading.Thread(target=self._beat_forever, name="hera-heartbeat", daemon=True)
            thread.start()
            atexit.register(self.stop)

    def beat(self) -> bool:
        assert self._started_at is not None
        with self._lock:
            held = list(self._held)
        try:
            with session_scope(self._sessions()) as session:
                WorkerRepository(session).beat(self._name, self._started_at)
                if held:
                    SubtaskRepository(session).touch_running(held)
        except Exception:  # the database is away; the next beat tries again
            log.debug("heartbeat of %s failed", self._name, exc_info=True)
            return False
        return True

    def _beat_forever(self) -> None:
        stop = self._stop
        while not stop.is_set():
            started = time.monotonic()
            self.beat()
            stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        """Stop beating and remove this process's row (a clean exit)."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        try:
            with session_scope(self._sessions()) as session:
                WorkerRepository(session).remove(self._name)
        except Exception:
            log.debug("removing the heartbeat of %s failed", self._name, exc_info=True)
