"""Worker liveness: each process that claims steps beats a heartbeat row every few seconds.

The heartbeat is written by a daemon thread of the claiming process itself (a prefork child, or a
threads-pool worker), started at its first claim, so "the worker is alive" means "the process that
holds the step is alive", not merely its parent. A process that exits cleanly removes its row; one
that is killed stops beating, and the reconciler gives its running steps back within
``HERA_WORKER_TIMEOUT_S`` (see ``WorkerRepository.orphaned_steps``).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.base import utcnow
from hera_router.db.repositories import WorkerRepository
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
            self._pid, self._started_at = pid, utcnow()
            self._name = f"{socket.gethostname()}:{pid}"
            self._stop = threading.Event()
            thread = threading.Thread(target=self._beat_forever, name="hera-heartbeat", daemon=True)
            thread.start()
            atexit.register(self.stop)

    def beat(self) -> bool:
        assert self._started_at is not None
        try:
            with session_scope(self._sessions()) as session:
                WorkerRepository(session).beat(self._name, self._started_at)
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
