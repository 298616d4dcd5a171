"""Engine and session factories. Nothing is created at import time.

Each process builds one engine from its settings (``make_engine``), one session factory from it
(``make_session_factory``), and runs each unit of work in ``session_scope``. Repositories never
commit; the scope does, so a request row and its outbox message land in one transaction.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hera_router.config import Settings

READ_ONLY_OPTION = "hera_read_only"
_HOLDS_WRITER_LOCK = "hera_holds_writer_lock"


def make_engine(settings: Settings) -> Engine:
    """Create the process's engine for ``settings.database_url``.

    Postgres: every connection starts with ``statement_timeout`` and ``lock_timeout`` from the
    settings, so a stuck query or a lock queue behind a migration fails fast instead of piling up
    workers; a connection idle for more than :data:`PING_IDLE_AFTER_S` is pinged before use
    (:func:`_ping_idle_connections`), so one the server closed meanwhile is replaced.

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
    engine = create_engine(url, connect_args=connect_args)
    _ping_idle_connections(engine)
    if engine.dialect.driver == "psycopg":
        _pipeline_transactions(engine)
    return engine


PIPELINED_OPTION = "hera_pipelined"
"""Execution option: this connection's write transactions run in psycopg's pipeline mode."""
DEFERRED_OPTION = "hera_deferred"
"""Execution option of a statement whose result nobody reads: in a pipelined transaction it goes
out with the next statement or the ``COMMIT`` instead of in a round trip of its own."""
_PIPELINE = "hera_pipeline"


def _pipeline_transactions(engine: Engine) -> None:
    """Fewer round trips per write transaction on Postgres, for sessions that ask for it
    (:data:`PIPELINED_OPTION`, :func:`make_hop_session_factory`).

    Without it, psycopg sends a transaction's ``BEGIN`` in a round trip of its own before the
    first statement, and each statement and the ``COMMIT`` in one each. In pipeline mode the
    ``BEGIN`` goes out with the first statement, and a statement marked :data:`DEFERRED_OPTION`
    (nobody reads its result) with whatever comes next, the ``COMMIT`` included. Every other
    statement is synced at once, so SQLAlchemy sees its rows and row count as without a pipeline,
    and an error is raised by the statement that caused it (a deferred statement's error is raised
    by the next sync and rolls the transaction back all the same).

    The pipeline starts with the transaction and ends when the connection goes back to the pool
    (the session releases it after each commit or rollback). Autocommit connections (the read
    sessions) never enter it.
    """

    def _pipeline_of(conn: Connection) -> Any:
        held = conn.info.get(_PIPELINE)
        if held is None:
            return None
        dbapi_connection, _manager, pipeline = held
        return pipeline if dbapi_connection is conn.connection.dbapi_connection else None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(PIPELINED_OPTION):
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is None or dbapi_connection.autocommit or _pipeline_of(conn) is not None:
            return
        manager = dbapi_connection.pipeline()
        conn.info[_PIPELINE] = (dbapi_connection, manager, manager.__enter__())

    def _execute(cursor: Any, context: Any, run: Any) -> bool:
        if context is None or not context.execution_options.get(PIPELINED_OPTION):
            return False
        pipeline = _pipeline_of(context.root_connection)
        if pipeline is None:
            return False
        run()
        if not context.execution_options.get(DEFERRED_OPTION):
            pipeline.sync()
        return True

    @event.listens_for(engine, "do_execute")
    def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        return _execute(cursor, context, lambda: cursor.execute(statement, parameters))

    @event.listens_for(engine, "do_execute_no_params")
    def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        return _execute(cursor, context, lambda: cursor.execute(statement))

    @event.listens_for(engine, "do_executemany")
    def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        return _execute(cursor, context, lambda: cursor.executemany(statement, parameters))

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        held = record.info.pop(_PIPELINE, None) if record is not None else None
        if held is None:
            return
        # A broken connection fails to leave pipeline mode: the pool discards it; nothing is left to send.
        with contextlib.suppress(Exception):
            held[1].__exit__(None, None, None)  # the context manager psycopg's pipeline() returned


PING_IDLE_AFTER_S = 1.0
"""A pooled connection idle longer than this is pinged (``SELECT 1``) when checked out."""

_CHECKED_IN_AT = "hera_checked_in_at"


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping``, for idle connections only.

    ``pool_pre_ping`` costs a round trip at every checkout: on the hot path, where a worker's
    connection comes back to the pool and goes out again milliseconds later, that was two of a
    hop's ~11 round trips. What it protects against is a connection the server closed while it sat
    in the pool (a restart, an idle timeout); one busy a moment ago is pinged by its own next
    statement, and a failure there is a disconnect that invalidates the pool (SQLAlchemy) and that
    the caller's retry schedule absorbs, as with a restart in the middle of a transaction.
    """

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN_AT)
        if checked_in is not None and time.monotonic() - checked_in <= PING_IDLE_AFTER_S:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:  # the server closed it: the pool replaces it (up to three times)
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Make SQLite behave like a small transactional server for several worker threads.

    - WAL lets readers run while one writer writes; ``busy_timeout`` makes a second writer wait
      instead of failing at once with "database is locked"; ``foreign_keys`` turns on the
      ``ON DELETE CASCADE`` the schema relies on (SQLite leaves it off per connection).
    - ``synchronous=NORMAL``: in WAL mode a commit no longer waits for an fsync (it is synced at
      checkpoints). The database cannot be corrupted by a crash; a power loss (not a process
      crash) may roll back the last transactions, which the embedded broker (``memory://``, lost
      with the process anyway) and the reconciler already treat as lost work. Measured: a commit
      was ~1.7 ms of a ~14 ms embedded hop (benchmarks/results/pipeline.md).
    - The stdlib driver opens transactions lazily, only before DML, which breaks SAVEPOINTs and
      lets a read-then-write unit of work see a stale snapshot. We take over: the driver runs in
      autocommit mode and SQLAlchemy's ``begin`` emits ``BEGIN IMMEDIATE``, so each transaction
      takes the write lock up front (waiting up to ``busy_timeout``) and never hits the
      unrecoverable ``SQLITE_BUSY`` of a read transaction upgrading to write. Transactions are
      serialised; embedded mode runs a handful of threads, so that is the right trade.
    - Writers of this process queue on a lock instead of SQLite's busy handler, which sleeps with
      backoff rather than waking when the lock is free (measured: tens of ms lost per transaction
      under load, and timeouts past ``busy_timeout``). The lock is taken at ``BEGIN`` and released
      when the connection goes back to the pool. Other processes still meet ``busy_timeout``.
    - Read-only units of work (:func:`make_read_session_factory`) begin a plain deferred
      transaction: under WAL they read a snapshot without taking the write lock at all.
    """
    writer_lock = threading.Lock()
    lock_timeout_s = busy_timeout_ms / 1000
    holder: dict[str, Any] = {}  # who holds writer_lock and since when, for the timeout's message

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        if not connection.info.get(_HOLDS_WRITER_LOCK):
            if not writer_lock.acquire(timeout=lock_timeout_s):
                waited = TimeoutError(_lock_timeout_text(lock_timeout_s, holder))
                raise OperationalError("BEGIN IMMEDIATE", None, waited)
            connection.info[_HOLDS_WRITER_LOCK] = True
            holder.update(thread=threading.current_thread().name, since=time.monotonic())
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_HOLDS_WRITER_LOCK, False):
            holder.clear()
            writer_lock.release()


def _lock_timeout_text(timeout_s: float, holder: dict[str, Any]) -> str:
    """Why a writer gave up, naming the thread that held the write lock (a transaction kept open
    across slow work shows up here) and for how long."""
    text = f"no SQLite write lock within {timeout_s:g} s"
    thread, since = holder.get("thread"), holder.get("since")
    if thread is None or since is None:
        return text
    return f"{text} (held by thread {thread} for {time.monotonic() - since:.1f} s)"


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work that only read (progress polls, API GETs, metrics).

    On SQLite they take no write lock, so watching a run never slows it down. Writing through
    one is a programming error that SQLite reports when it happens.

    On Postgres they run in autocommit: under READ COMMITTED every statement reads its own
    snapshot anyway, so a ``BEGIN`` ... ``COMMIT`` around reads buys no consistency and costs two
    round trips (the router's read of a request's history is one of these, on every hop). A read
    that needs one snapshot for several rows asks for them in one statement.
    """
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return sessionmaker(bind=engine.execution_options(**options), expire_on_commit=False)


def make_hop_session_factory(engine: Engine, *, pipelined: bool = True) -> sessionmaker[Session]:
    """Sessions for the pipeline hops' write transactions: as :func:`make_session_factory`, and on
    Postgres (with ``pipelined``, ``HERA_DB_PIPELINE``) in psycopg's pipeline mode, so a
    transaction's ``BEGIN`` and its deferred statements cost no round trip of their own
    (:func:`_pipeline_transactions`)."""
    if pipelined and engine.dialect.driver == "psycopg":
        engine = engine.execution_options(**{PIPELINED_OPTION: True})
    return sessionmaker(bind=engine, expire_on_commit=False)


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
