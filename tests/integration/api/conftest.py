"""The producer API served over real HTTP (uvicorn in a thread) on SQLite and on Postgres.

Both databases are built by the migrations. The producer's broker is ``memory://``: nothing
consumes, so tests assert on what the API wrote (requests, outbox rows and their ``published_at``)
rather than on execution, which the pipeline's own tests cover. Limits are tiny so the size checks
can be hit with small payloads.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.app import create_app
from hera_router.api.state import ApiState
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.models import OutboxMessage
from hera_router.db.repositories import OutboxRepository
from hera_router.db.session import session_scope
from hera_router.devserver.server import ServerThread
from hera_router.pipeline.names import plan_task_id
from tests.conftest import fresh_postgres_database

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

LIMITS = {"max_batch_requests": 6, "max_input_chars": 100, "max_upload_bytes": 4096, "results_page_size": 2}


@pytest.fixture(scope="module", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'hera.sqlite3'}"
        upgrade(url)
        yield url
    else:
        with fresh_postgres_database("hera_api") as url:
            upgrade(url)
            yield url


def api_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url, "broker_url": "memory://", "api": LIMITS}
    return load_settings(**(values | overrides))


@dataclass
class RunningApi:
    url: str
    state: ApiState

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.state.sessions


@contextmanager
def running_api(settings: Settings) -> Iterator[RunningApi]:
    """The app on a free loopback port; its publisher thread and engine are closed afterwards
    (the test server runs without lifespan, so the app's own shutdown hook does not fire)."""
    app = create_app(settings)
    state: ApiState = app.state.hera
    try:
        with ServerThread(app) as server:
            yield RunningApi(url=server.url, state=state)
    finally:
        state.close()


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[RunningApi]:
    with running_api(api_settings(database_url)) as running:
        yield running


@dataclass
class TenantKey:
    id: uuid.UUID
    name: str
    secret: str


def new_tenant(api: RunningApi) -> TenantKey:
    name = f"tenant-{uuid.uuid4().hex[:8]}"
    tenant = create_tenant(api.sessions, name)
    _, secret = create_api_key(api.sessions, name)
    return TenantKey(id=tenant.id, name=name, secret=secret)


@pytest.fixture
def tenant(api: RunningApi) -> TenantKey:
    return new_tenant(api)


@pytest.fixture
def client(api: RunningApi, tenant: TenantKey) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as ``tenant``."""
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {tenant.secret}"}, timeout=30) as http:
        yield http


@pytest.fixture
def anonymous(api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


def plan_message(api: RunningApi, request_id: str | uuid.UUID) -> OutboxMessage | None:
    """The outbox row of the request's first router hop."""
    with session_scope(api.sessions) as session:
        return OutboxRepository(session).by_task_id(plan_task_id(uuid.UUID(str(request_id)), 0))


def wait_published(api: RunningApi, request_id: str | uuid.UUID, timeout_s: float = 10.0) -> OutboxMessage:
    """Wait for the API's background publisher to mark the request's first hop published."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = plan_message(api, request_id)
        if message is not None and message.published_at is not None:
            return message
        if time.monotonic() > deadline:
            raise AssertionError(f"the plan message of {request_id} was not published within {timeout_s}s: {message}")
        time.sleep(0.02)
