"""Database fixtures: every test here runs once on SQLite and once on Postgres.

Both databases are built by the Alembic migrations (never ``create_all``), so the tests exercise
the schema production gets. Each test runs inside an outer transaction that is rolled back
afterwards; repository code may still "commit" (it releases a SAVEPOINT instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.models import Request, Tenant
from hera_router.db.repositories import RequestRepository, TenantRepository
from hera_router.db.session import make_engine
from tests.conftest import fresh_postgres_database

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def engine_for(url: str) -> Engine:
    """An engine configured exactly as the service configures it."""
    return make_engine(load_settings(database_url=url))


@pytest.fixture(scope="session")
def migrated_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'hera.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def migrated_db_postgres_url() -> Iterator[str]:
    """A Postgres database of this suite's own (tests here commit rows and claim the outbox)."""
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, once per backend."""
    name = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_db_postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (SQLAlchemy's external-transaction recipe)."""
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new, unmigrated database for tests that migrate up and down themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def tenant(session: Session) -> Tenant:
    return TenantRepository(session).create("acme")


@pytest.fixture
def request_row(session: Session, tenant: Tenant) -> Request:
    return RequestRepository(session).add(tenant_id=tenant.id, input="What is 2 + 2?", policy="hera")
