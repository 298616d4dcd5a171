"""A real `celery worker` process executes a HeraTask and its effect lands in Postgres.

Run once through Redis and once through RabbitMQ: the same app factory, routes and task base
must work on both brokers. Each run uses its own queue names so that a leftover message from an
earlier run can never satisfy the assertion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hera_router.config import QueueNames, load_settings
from hera_router.db.repositories.tenants import TenantRepository
from hera_router.db.session import make_engine, make_session_factory, session_scope
from hera_router.workers import create_app
from tests.conftest import RABBITMQ_URL, REDIS_URL

REPO = Path(__file__).resolve().parents[3]
PROBE_MODULE = "tests.integration.workers.probe_tasks"

pytestmark = [pytest.mark.postgres]


def wait_for_tenant(database_url: str, name: str, timeout_s: float) -> bool:
    settings = load_settings(database_url=database_url)
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with session_scope(sessions) as session:
                if TenantRepository(session).by_name(name) is not None:
                    return True
            time.sleep(0.2)
        return False
    finally:
        engine.dispose()


@pytest.fixture
def worker_process(
    request: pytest.FixtureRequest, migrated_postgres_url: str, tmp_path: Path
) -> Iterator[tuple[str, QueueNames]]:
    broker_url: str = request.param
    suffix = uuid.uuid4().hex[:8]
    queues = QueueNames(**{name: f"test-{suffix}-{name}" for name in QueueNames.model_fields})
    env = {
        **os.environ,
        "HERA_MODE": "distributed",
        "HERA_BROKER_URL": broker_url,
        "HERA_DATABASE_URL": migrated_postgres_url,
        "HERA_DATA_DIR": str(tmp_path),
        **{f"HERA_QUEUES__{name.upper()}": value for name, value in queues.model_dump().items()},
        "PYTHONPATH": str(REPO),
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hera_router.workers",
            "worker",
            "-I",
            PROBE_MODULE,
            "-Q",
            queues.maintenance,
            "-P",
            "prefork",
            "-c",
            "1",
            "-n",
            f"test-{suffix}@localhost",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield broker_url, queues
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.parametrize(
    "worker_process",
    [
        pytest.param(REDIS_URL, id="redis", marks=pytest.mark.redis),
        pytest.param(RABBITMQ_URL, id="rabbitmq", marks=pytest.mark.rabbitmq),
    ],
    indirect=True,
)
def test_worker_process_runs_task_into_postgres(
    worker_process: tuple[str, QueueNames], migrated_postgres_url: str, tmp_path: Path
) -> None:
    broker_url, queues = worker_process
    settings = load_settings(
        mode="distributed", broker_url=broker_url, database_url=migrated_postgres_url, queues=queues
    )
    producer = create_app(settings, include=[PROBE_MODULE])
    name = f"probe-{uuid.uuid4().hex[:8]}"
    # Published twice with one task id: at-least-once delivery must still yield one row.
    task_id = f"probe:{name}"
    producer.send_task("maintenance.test_record_probe", args=[name], task_id=task_id)
    producer.send_task("maintenance.test_record_probe", args=[name], task_id=task_id)

    found = wait_for_tenant(migrated_postgres_url, name, timeout_s=90)
    worker_log = (tmp_path / "worker.log").read_text()
    assert found, f"the worker never recorded the probe; its log:\n{worker_log}"
    assert queues.maintenance in worker_log  # it consumed the queue the route points at
