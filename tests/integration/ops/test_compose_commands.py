"""Every hera-router command in docker/compose.yaml, run as a bare process against local services.

Docker cannot run here, so each container's exact argv runs on this machine with the compose
environment, re-pointed at the test Postgres and Redis (fresh database, unique queue names, free
ports). Each must come up and pass its own healthcheck: the API's /healthz, a worker answering
`hera-router ping` (the compose healthcheck), Flower's /healthcheck, the dev servers' /health;
migrate must exit 0 and beat must start its scheduler.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from hera_router.config import QueueNames
from tests.conftest import REDIS_URL, fresh_postgres_database
from tests.integration.ops.processes import HERA, REPO, answers, free_port, spawn, stop, wait_until
from tests.unit.ops.compose import hera_services, load_compose

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def with_port(argv: list[str], port: int) -> list[str]:
    """``argv`` with the value after ``--port`` replaced (containers all listen on fixed ports)."""
    if "--port" not in argv:
        return argv
    index = argv.index("--port") + 1
    return [*argv[:index], str(port), *argv[index + 1 :]]


def local_env(service: dict[str, Any], tmp: Path, overrides: dict[str, str]) -> dict[str, str]:
    """The service's compose environment with every address moved to this machine."""
    env = {name: str(value) for name, value in service.get("environment", {}).items()}
    env.update(overrides)
    return {**os.environ, **env, "PYTHONPATH": str(REPO)}


def test_every_container_command_starts_as_a_bare_process(tmp_path: Path) -> None:
    services = hera_services(load_compose())
    suffix = uuid.uuid4().hex[:8]
    queues = {f"HERA_QUEUES__{name.upper()}": f"c{suffix}-{name}" for name in QueueNames.model_fields}
    ports = {name: free_port() for name in services}
    with fresh_postgres_database() as database_url:
        common = {
            "HERA_DATABASE_URL": database_url,
            "HERA_BROKER_URL": REDIS_URL,
            "HERA_REDIS_URL": REDIS_URL,
            "HERA_DATA_DIR": str(tmp_path / "data"),
            "HERA_EDGE__URL": f"http://127.0.0.1:{ports['devserver']}",
            "HERA_CLOUD__URL": f"http://127.0.0.1:{ports['devserver-cloud']}/v1",
            "HERA_OPS__FLOWER_BASIC_AUTH": "ops:secret",
            "HERA_OPS__FLOWER_ADDRESS": "127.0.0.1",
            "HERA_OPS__METRICS_HOST": "127.0.0.1",
            **queues,
        }

        def env_for(name: str) -> dict[str, str]:
            return local_env(
                services[name],
                tmp_path,
                {
                    **common,
                    "HERA_API__PORT": str(ports[name]),
                    "HERA_OPS__FLOWER_PORT": str(ports[name]),
                    "HERA_OPS__WORKER_METRICS_PORT": str(ports[name]),
                    "HERA_OPS__METRICS_DIR": str(tmp_path / f"metrics-{name}"),
                },
            )

        def argv_of(name: str) -> list[str]:
            return [*HERA, *with_port(services[name]["command"][1:], ports[name])]

        # Migrations first and once, as compose orders it.
        migrate = subprocess.run(
            argv_of("migrate"), cwd=REPO, env=env_for("migrate"), check=False, capture_output=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stderr.decode()

        started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        try:
            for name in services:
                if name != "migrate":
                    log = tmp_path / f"{name}.log"
                    started[name] = (spawn(argv_of(name), env_for(name), log), log)

            def check_url(name: str, path: str) -> None:
                wait_until(
                    answers(f"http://127.0.0.1:{ports[name]}{path}"), 90, f"{name} did not answer", started[name][1]
                )

            check_url("devserver", "/health")
            check_url("devserver-cloud", "/health")
            check_url("api", "/healthz")
            check_url("flower", "/healthcheck")
            for worker in ("router", "edge", "cloud", "trainer"):
                health = services[worker]["healthcheck"]["test"]
                assert health[1] == "hera-router"
                check_url(worker, "/metrics")
                probe = [*HERA, *health[2:], "--timeout", "2"]

                def pings(probe: list[str] = probe, worker: str = worker) -> bool:
                    run = subprocess.run(
                        probe, cwd=REPO, env=env_for(worker), check=False, capture_output=True, timeout=60
                    )
                    return run.returncode == 0

                wait_until(pings, 120, f"{worker} did not answer `hera-router ping`", started[worker][1])
            wait_until(
                lambda: "beat: Starting" in started["beat"][1].read_text(errors="replace"),
                60,
                "beat did not start",
                started["beat"][1],
            )
            for name, (process, log) in started.items():
                assert process.poll() is None, f"{name} exited:\n{log.read_text(errors='replace')[-2000:]}"
        finally:
            for process, _ in started.values():
                process.terminate()
            for process, _ in started.values():
                stop(process)


def test_ping_fails_for_a_worker_that_does_not_exist() -> None:
    env = {**os.environ, "HERA_MODE": "distributed", "HERA_BROKER_URL": REDIS_URL, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [*HERA, "ping", "--node", f"nobody-{uuid.uuid4().hex[:6]}@%h", "--timeout", "1"],
        cwd=REPO,
        env=env,
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "did not answer within 1 s" in run.stderr.decode()


def test_flower_refuses_to_start_without_credentials() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HERA_OPS__FLOWER")}
    env |= {"HERA_MODE": "distributed", "HERA_BROKER_URL": REDIS_URL, "PYTHONPATH": str(REPO)}
    run = subprocess.run([*HERA, "flower"], cwd=REPO, env=env, check=False, capture_output=True, timeout=60)
    assert run.returncode == 2
    assert "refusing to start Flower without authentication" in run.stderr.decode()
    assert "HERA_OPS__FLOWER_BASIC_AUTH" in run.stderr.decode()
