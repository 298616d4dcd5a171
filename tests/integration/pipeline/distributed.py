"""A distributed deployment inside one test: Postgres, Redis, worker processes, model servers.

The simulated SLM and LLM are served over HTTP by dev servers running in the test process (edge
over the TGI protocol, cloud over the OpenAI protocol), so the workers use the real clients. Each
system gets its own queue names, so leftovers of another run can never be consumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_router.config import QueueNames, Settings, load_settings
from hera_router.devserver.app import create_app as create_model_server
from hera_router.devserver.faults import FaultInjector
from hera_router.devserver.server import ServerThread
from hera_router.simulator.backend import SimBackend
from hera_router.workers import HeraCelery, create_app

REPO = Path(__file__).resolve().parents[3]


@dataclass
class WorkerProcess:
    queue: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class DistributedSystem:
    settings: Settings
    app: HeraCelery
    env: dict[str, str]
    log_dir: Path
    edge_faults: FaultInjector
    cloud_faults: FaultInjector
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    def start_worker(
        self, queue: str, *, pool: str = "threads", concurrency: int = 4, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        """Start a `hera-router worker` for ``queue``; ``env`` adds settings for this process only."""
        name = f"{queue}-{uuid.uuid4().hex[:6]}"
        log_path = self.log_dir / f"worker-{name}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hera_router.cli",
                "worker",
                "-Q",
                queue,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@localhost",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(queue=queue, process=process, log_path=log_path)
        self.workers[queue] = worker
        return worker

    def kill_worker(self, queue: str) -> None:
        """SIGKILL: no warm shutdown, no ack, no requeue; what an OOM kill or a power cut does."""
        worker = self.workers.pop(queue)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=30)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.process.terminate()
        for worker in self.workers.values():
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.workers.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {w.queue}\n{w.log()[-4000:]}" for w in self.workers.values())


@contextmanager
def sim_model_servers(
    *, seed: int, edge_faults: FaultInjector, cloud_faults: FaultInjector, time_scale: float | None = None
) -> Iterator[dict[str, str]]:
    """The simulated SLM and LLM served over loopback HTTP in this process (edge over the TGI
    protocol, cloud over the OpenAI protocol) until the block ends; yields the settings that point
    the workers at them. ``time_scale``: the servers sleep each call's simulated latency times
    this (the simulator's latency model in real time); None: they answer at once."""
    timing: dict[str, Any] = {} if time_scale is None else {"realtime": True, "time_scale": time_scale}
    slm, llm = SimBackend("slm", "sim-slm", seed=seed, **timing), SimBackend("llm", "sim-llm", seed=seed, **timing)
    with (
        ServerThread(create_model_server(slm, faults=edge_faults)) as edge,
        ServerThread(create_model_server(llm, faults=cloud_faults)) as cloud,
    ):
        yield {
            "HERA_EDGE__BACKEND": "tgi",
            "HERA_EDGE__URL": edge.url,
            "HERA_EDGE__MODEL": "sim-slm",
            "HERA_CLOUD__BACKEND": "openai",
            "HERA_CLOUD__URL": f"{cloud.url}/v1",
            "HERA_CLOUD__MODEL": "sim-llm",
        }


@contextmanager
def distributed_system(
    database_url: str,
    broker_url: str,
    log_dir: Path,
    *,
    seed: int,
    overrides: dict[str, str] | None = None,
    start: tuple[str, ...] = ("router", "edge", "cloud"),
    time_scale: float | None = None,
) -> Iterator[DistributedSystem]:
    suffix = uuid.uuid4().hex[:8]
    queues = QueueNames(**{name: f"t{suffix}-{name}" for name in QueueNames.model_fields})
    edge_faults, cloud_faults = FaultInjector(), FaultInjector()
    with sim_model_servers(
        seed=seed, edge_faults=edge_faults, cloud_faults=cloud_faults, time_scale=time_scale
    ) as model_servers:
        env_settings: dict[str, str] = {
            "HERA_MODE": "distributed",
            "HERA_BROKER_URL": broker_url,
            "HERA_DATABASE_URL": database_url,
            "HERA_DATA_DIR": str(log_dir),
            "HERA_SIMULATOR__SEED": str(seed),
            # No training worker by default: shadow runs would sit in its queue (tests of continual
            # fine-tuning start one and override this).
            "HERA_CONTINUAL__SHADOW_RATE": "0",
            **model_servers,
            "HERA_EDGE__MAX_RETRIES": "1",
            "HERA_EDGE__BACKOFF_BASE_S": "0.05",
            "HERA_CLOUD__BACKOFF_BASE_S": "0.05",
            "HERA_LOG_LEVEL": "INFO",
            **{f"HERA_QUEUES__{name.upper()}": value for name, value in queues.model_dump().items()},
            **(overrides or {}),
        }
        env = {**os.environ, **env_settings, "PYTHONPATH": str(REPO)}
        settings = settings_from(env_settings)
        app = create_app(settings)
        system = DistributedSystem(
            settings=settings, app=app, env=env, log_dir=log_dir, edge_faults=edge_faults, cloud_faults=cloud_faults
        )
        for queue in start:
            system.start_worker(queue, pool="prefork" if queue == "router" else "threads")
        try:
            yield system
        finally:
            system.stop()
            app.hera_runtime.close()


def settings_from(env: dict[str, str]) -> Settings:
    """The same settings the workers read from their environment, for the test's own producer."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for(predicate: Any, timeout_s: float, message: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval_s)
