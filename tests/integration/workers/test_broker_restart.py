"""A real `hera-router worker` survives Redis being restarted empty, whatever the pool, and a
worker that cannot reach its broker exits non-zero (so its supervisor restarts it).

The trigger of the kombu 5.7 crash (docs/research/issue16-kombu-redis-restart.md) is made
deterministic here: concurrency 4 with two long acks_late tasks running leaves two free slots,
so a BRPOP is outstanding and unacked deliveries are in memory when Redis dies. Without
hera_router/workers/kombu_patches.py both pools die with "Unrecoverable error: AttributeError
('...hostname')" (4/4 threads, 2/2 prefork in the research runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hera_router.config import QueueNames, load_settings
from hera_router.workers import create_app
from tests.integration.services import free_port, redis_server
from tests.integration.workers.test_worker_process import PROBE_MODULE, REPO, wait_for_tenant

pytestmark = [pytest.mark.postgres]


def _env(broker_url: str, database_url: str, data_dir: Path, queues: QueueNames, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HERA_MODE": "distributed",
        "HERA_BROKER_URL": broker_url,
        "HERA_DATABASE_URL": database_url,
        "HERA_DATA_DIR": str(data_dir),
        **{f"HERA_QUEUES__{name.upper()}": value for name, value in queues.model_dump().items()},
        "PYTHONPATH": str(REPO),
        **extra,
    }


def _hera_worker(queue: str, pool: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hera_router.cli",
            "worker",
            "-Q",
            "maintenance",
            "-P",
            pool,
            "-c",
            "4",
            "-n",
            f"{queue}@localhost",
            "-I",
            PROBE_MODULE,
            "--metrics-port",
            "0",
        ],
        cwd=REPO,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_for_log(log_path: Path, text: str, count: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while log_path.read_text(errors="replace").count(text) < count:
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {count}× {text!r} in the worker log:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_worker_keeps_consuming_after_redis_restarts_empty(
    pool: str, migrated_postgres_url: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    queues = QueueNames(**{name: f"restart-{suffix}-{name}" for name in QueueNames.model_fields})
    log_path = tmp_path / "worker.log"
    with redis_server(tmp_path / "redis") as redis:
        env = _env(redis.url, migrated_postgres_url, tmp_path, queues)
        worker = _hera_worker(f"restart-{suffix}", pool, env, log_path)
        settings = load_settings(
            mode="distributed", broker_url=redis.url, database_url=migrated_postgres_url, queues=queues
        )
        producer = create_app(settings, include=[PROBE_MODULE])
        try:
            _wait_for_log(log_path, "ready.", 1, 90, worker)
            for index in range(2):
                producer.send_task("maintenance.test_sleep_probe", args=[f"sleep-{suffix}-{index}", 8.0])
            _wait_for_log(log_path, "test_sleep_probe", 2, 30, worker)
            time.sleep(1.0)  # both running, two slots free: a BRPOP is outstanding

            redis.restart(down_s=1.0)
            time.sleep(8.0)  # the crash, when it happens, comes within a second or two
            assert worker.poll() is None, f"the worker died (status {worker.returncode}):\n{log_path.read_text()}"

            name = f"after-{suffix}"
            producer.send_task("maintenance.test_record_probe", args=[name])
            found = wait_for_tenant(migrated_postgres_url, name, timeout_s=60)
            text = log_path.read_text(errors="replace")
            assert found, f"the worker did not consume after the restart:\n{text}"
            assert "Unrecoverable error" not in text
            assert "attribute 'hostname'" not in text
            assert "does not implement kill_job" not in text
        finally:
            producer.close()
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    # A warm shutdown by the supervisor is a clean exit.
    assert worker.returncode == 0, log_path.read_text(errors="replace")


def test_worker_that_cannot_reach_its_broker_exits_non_zero(migrated_postgres_url: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    queues = QueueNames(**{name: f"gone-{suffix}-{name}" for name in QueueNames.model_fields})
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    env = _env(nothing_there, migrated_postgres_url, tmp_path, queues, HERA_BROKER_CONNECTION_MAX_RETRIES="1")
    log_path = tmp_path / "worker.log"
    worker = _hera_worker(f"gone-{suffix}", "threads", env, log_path)
    try:
        code = worker.wait(timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code != 0, log_path.read_text(errors="replace")
