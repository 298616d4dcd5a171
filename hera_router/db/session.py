"""Engine and session factories. Nothing is created at import time.

Each process builds one engine from its settings (``make_engine``), one session factory from it
(``make_session_factory``), and runs each unit of work in ``session_scope``. Repositories never
commit; the scope does, so a request row and its outbox message land in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from hera_router.config import Settings


def make_engine(settings: Settings) -> Engine:
    """Create the process's engine for ``settings.database_url``.

    Postgres: every connection starts with ``statement_timeout`` and ``lock_timeout`` from the
    settings, so a stuck query or a lock queue behind a migration fails fast instead of piling up
    workers; ``pool_pre_ping`` drops connections the server closed while idle.

    SQLite (embedded mode): see :func:`_configure_sqlite`.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            # The default URL points into data_dir, which a fresh install has not created yet.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms=settings.db_lock_timeout_ms)
        return engine
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["options"] = (
            f"-c statement_timeout={settings.db_statement_timeout_ms} -c lock_timeout={settings.db_lock_timeout_ms}"
        )
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Make SQLite behave like a small transactional server for several worker threads.

    - WAL lets readers run while one writer writes; ``busy_timeout`` makes a second writer wait
      instead of failing at once with "database is locked"; ``foreign_keys`` turns on the
      ``ON DELETE CASCADE`` the schema relies on (SQLite leaves it off per connection).
    - The stdlib driver opens transactions lazily, only before DML, which breaks SAVEPOINTs and
      lets a read-then-write unit of work see a stale snapshot. We take over: the driver runs in
      autocommit mode and SQLAlchemy's ``begin`` emits ``BEGIN IMMEDIATE``, so each transaction
      takes the write lock up front (waiting up to ``busy_timeout``) and never hits the
      unrecoverable ``SQLITE_BUSY`` of a read transaction upgrading to write. Transactions are
      serialised; embedded mode runs a handful of threads, so that is the right trade.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``.

    ``expire_on_commit=False``: rows returned by a repository stay readable after the scope
    commits (tasks hand IDs and values onwards after commit without another round trip).
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
