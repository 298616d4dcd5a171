"""The in-process worker on ``memory://`` runs the same tasks the worker processes run.

This is the building block of embedded mode: same app factory, same Task base class, real
consumer and thread pool, SQLite underneath. Also checks the base class's retry mapping, its
metrics and its log context, which only show when a real worker executes the task.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories.tenants import TenantRepository
from hera_router.db.session import session_scope
from hera_router.metrics.instruments import TASK_EVENTS
from hera_router.workers import HeraCelery, Queue, create_app
from hera_router.workers.base import TaskContextFilter
from hera_router.workers.embedded import embedded_worker
from tests.integration.workers import probe_tasks

PROBE_MODULE = "tests.integration.workers.probe_tasks"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("embedded")
    settings = load_settings(data_dir=data_dir, mode="embedded")
    upgrade(settings.database_url)
    return settings


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[HeraCelery]:
    app = create_app(settings, include=[PROBE_MODULE])
    with embedded_worker(app, [Queue.MAINTENANCE], concurrency=2):
        yield app
    app.hera_runtime.close()


def tenant_exists(app: HeraCelery, name: str, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(app.hera_runtime.sessions) as session:
            if TenantRepository(session).by_name(name) is not None:
                return True
        time.sleep(0.05)
    return False


def events(task: str, event: str) -> float:
    value = TASK_EVENTS.labels(task, event)._value.get()
    assert isinstance(value, float)
    return value


def test_embedded_worker_runs_a_task_into_sqlite(app: HeraCelery) -> None:
    assert app.conf.broker_url == "memory://"
    name = f"probe-{uuid.uuid4().hex[:8]}"
    app.send_task("maintenance.test_record_probe", args=[name])
    assert tenant_exists(app, name)


def test_transient_errors_are_retried_until_success(app: HeraCelery) -> None:
    name = f"flaky-{uuid.uuid4().hex[:8]}"
    probe_tasks.FLAKY_FAILURES[name] = 2
    retried_before = events("maintenance.test_flaky_probe", "retried")
    app.send_task("maintenance.test_flaky_probe", args=[name])
    assert tenant_exists(app, name, timeout_s=30)
    assert probe_tasks.FLAKY_FAILURES[name] == 0
    assert events("maintenance.test_flaky_probe", "retried") - retried_before == 2


def test_programming_errors_fail_once_without_retry(app: HeraCelery) -> None:
    failed_before = events("maintenance.test_broken_probe", "failed")
    started_before = events("maintenance.test_broken_probe", "started")
    app.send_task("maintenance.test_broken_probe", args=["x"])
    deadline = time.monotonic() + 20
    while events("maintenance.test_broken_probe", "failed") == failed_before:
        assert time.monotonic() < deadline, "the broken task never reported its failure"
        time.sleep(0.05)
    time.sleep(0.5)  # a retry, if one were (wrongly) scheduled, would start within this window
    assert events("maintenance.test_broken_probe", "started") - started_before == 1
    assert events("maintenance.test_broken_probe", "retried") == 0


def test_log_records_carry_the_running_task(app: HeraCelery, caplog: pytest.LogCaptureFixture) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    handler.addFilter(TaskContextFilter())
    base_logger = logging.getLogger("hera_router.workers.base")
    base_logger.addHandler(handler)
    try:
        app.send_task("maintenance.test_broken_probe", args=["logged"])
        deadline = time.monotonic() + 20
        while not any("logged" in record.getMessage() for record in records):
            assert time.monotonic() < deadline, "no failure was logged"
            time.sleep(0.05)
    finally:
        base_logger.removeHandler(handler)
    failure = next(record for record in records if "logged" in record.getMessage())
    assert failure.task_name == "maintenance.test_broken_probe"  # type: ignore[attr-defined]
    assert failure.task_id != "-"  # type: ignore[attr-defined]
