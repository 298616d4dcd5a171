"""Per-process resources the tasks share: settings, the database engine and session factory.

Built lazily so that importing or forking never opens a connection; a prefork child disposes of
the engine it inherited (``worker_process_init``) so parent and child never share a socket.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hera_router.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._read_sessions: sessionmaker[Session] | None = None
        self._hop_sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                from hera_router.db.session import make_engine

                self._engine = make_engine(self.settings)
            return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        engine = self.engine
        with self._lock:
            if self._sessions is None:
                from hera_router.db.session import make_session_factory

                self._sessions = make_session_factory(engine)
            return self._sessions

    @property
    def hop_sessions(self) -> sessionmaker[Session]:
        """Sessions for the pipeline hops' write transactions (pipelined on Postgres with ``HERA_DB_PIPELINE``)."""
        engine = self.engine
        with self._lock:
            if self._hop_sessions is None:
                from hera_router.db.session import make_hop_session_factory

                self._hop_sessions = make_hop_session_factory(engine, pipelined=self.settings.db_pipeline)
            return self._hop_sessions

    @property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for read-only work: on SQLite they never wait for or hold the write lock."""
        engine = self.engine
        with self._lock:
            if self._read_sessions is None:
                from hera_router.db.session import make_read_session_factory

                self._read_sessions = make_read_session_factory(engine)
            return self._read_sessions

    def after_fork(self) -> None:
        """Drop connections inherited from the parent without closing them under its feet."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose(close=False)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessions = None
            self._read_sessions = None
            self._hop_sessions = None
