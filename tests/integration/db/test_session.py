"""Engine settings and the unit-of-work scope, on real connections."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, delete, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from hera_router.config import load_settings
from hera_router.db import session as session_module
from hera_router.db.models import Tenant
from hera_router.db.repositories import TenantRepository
from hera_router.db.session import make_engine, make_session_factory, session_scope


def test_session_scope_commits_or_rolls_back(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        kept = TenantRepository(session).create("scope-kept")

    def create_then_fail() -> None:
        with session_scope(factory) as session:
            TenantRepository(session).create("scope-dropped")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        create_then_fail()
    try:
        with session_scope(factory) as session:
            names = set(session.scalars(select(Tenant.name).where(Tenant.name.like("scope-%"))))
            assert names == {"scope-kept"}
            assert kept.name == "scope-kept"  # still readable: expire_on_commit=False
    finally:
        with session_scope(factory) as session:
            session.execute(delete(Tenant).where(Tenant.name == "scope-kept"))


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(
        load_settings(database_url=f"sqlite:///{tmp_path / 'new-dir' / 'x.sqlite3'}", db_lock_timeout_ms=1234)
    )
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: no fsync per commit
            connection.rollback()  # end the transaction the PRAGMA reads autobegan
            # Savepoints work because SQLAlchemy, not the driver, opens transactions.
            with connection.begin():
                connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                savepoint = connection.begin_nested()
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
                savepoint.rollback()
                assert connection.scalar(select(func.count()).select_from(text("t"))) == 0
    finally:
        engine.dispose()


def test_a_writer_that_times_out_names_the_thread_holding_the_write_lock(tmp_path: Path) -> None:
    engine = make_engine(load_settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}", db_lock_timeout_ms=100))
    factory = make_session_factory(engine)
    holding, done = threading.Event(), threading.Event()

    def hold_a_transaction_open() -> None:
        with session_scope(factory) as session:
            session.execute(text("SELECT 1"))
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=hold_a_transaction_open, name="slow-writer")
    holder.start()
    try:
        assert holding.wait(10)
        held_by = r"within 0\.1 s \(held by thread slow-writer for [0-9.]+ s\)"
        with pytest.raises(OperationalError, match=held_by), session_scope(factory) as session:
            session.execute(text("SELECT 1"))
        done.set()
        holder.join(10)
        with session_scope(factory) as session:  # released with the holder's connection
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        done.set()
        engine.dispose()


@pytest.mark.postgres
def test_postgres_timeouts_come_from_settings(migrated_db_postgres_url: str) -> None:
    engine = make_engine(
        load_settings(database_url=migrated_db_postgres_url, db_statement_timeout_ms=4321, db_lock_timeout_ms=1234)
    )
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "4321ms"
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "1234ms"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_pings_only_idle_connections_and_replaces_one_the_server_closed(
    migrated_db_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(load_settings(database_url=migrated_db_postgres_url))
    killer = create_engine(migrated_db_postgres_url, poolclass=NullPool)

    def backend_pid() -> int:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def terminate(pid: int) -> None:  # the server closes the pooled connection (restart, idle timeout)
        with killer.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        time.sleep(0.05)

    try:
        first = backend_pid()
        # Checked out again within the idle window: no ping, so a connection killed meanwhile
        # fails on its own statement (a disconnect, which invalidates the pool) ...
        monkeypatch.setattr(session_module, "PING_IDLE_AFTER_S", 60.0)
        assert backend_pid() == first
        terminate(first)
        with pytest.raises(OperationalError):
            backend_pid()
        second = backend_pid()
        assert second != first
        # ... while past the idle window a checkout pings first and replaces it without an error.
        monkeypatch.setattr(session_module, "PING_IDLE_AFTER_S", 0.0)
        terminate(second)
        assert backend_pid() not in (first, second)
    finally:
        engine.dispose()
        killer.dispose()
