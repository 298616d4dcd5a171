"""What one hop costs the database and the worker, measured without a broker: for sizing.

The pipeline's hops are called in one thread the way a worker would call them (every message the
outbox publishes is delivered in order, no Celery, no broker), over a fresh Postgres database
(the default, and pipelined hop transactions: ``HERA_DB_PIPELINE=true``) and over SQLite. For M
simulated ``random`` requests (SIMULATED models, zero latency) it reports per hop (a hop is one
decision or one model call, as in ``bench_pipeline.py``):

- statements, write transactions and round trips (``hera_router/db/counting.py``);
- the worker's CPU (``time.process_time`` of this process: the pipeline's Python, SQLAlchemy and
  the driver) and wall time;
- on Postgres, the CPU of the server backend(s) serving the database (``/proc/<pid>/stat`` of the
  backends ``pg_stat_activity`` lists for it; the shared WAL writer and checkpointer are not
  counted), per routed subtask (two hops: plan + run).

From these: the routed subtasks/s one Postgres core carries, and the worker cores that feed it.

    .venv/bin/python benchmarks/bench_hop_cost.py                 # M = 40, prints a markdown table
    .venv/bin/python benchmarks/bench_hop_cost.py --requests 100
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import func, select

from benchmarks.bench_pipeline import fresh_postgres_database, loadavg, postgres_backend_cpu, submit
from hera_router.config import load_settings
from hera_router.db.counting import Counts, counting
from hera_router.db.enums import Executor
from hera_router.db.migrate import upgrade
from hera_router.db.models import Decision, ModelCall, Request
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.pipeline import Pipeline, Services
from hera_router.pipeline.names import TaskName
from hera_router.pipeline.outbox import Dispatcher
from hera_router.simulator.generate import generate


@dataclass
class Measured:
    label: str
    hops: int
    subtasks: int
    counts: Counts
    cpu_s: float
    wall_s: float
    database_cpu_s: float | None


class Driver:
    """The hops of one process over ``database_url``, fed by a list instead of a broker."""

    def __init__(self, database_url: str, data_dir: Path, *, pipelined: bool = True) -> None:
        settings = load_settings(
            data_dir=data_dir,
            database_url=database_url,
            db_pipeline=pipelined,
            simulator={"seed": 7},
            edge={"backend": "sim", "model": "sim-slm"},
            cloud={"backend": "sim", "model": "sim-llm"},
        )
        self.runtime = Runtime(settings)
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.dispatcher = Dispatcher(lambda: self.runtime.sessions, self._publish, relay_grace_s=settings.relay_grace_s)
        self.pipeline = Pipeline(Services(self.runtime, self.dispatcher))

    def _publish(self, task_name: str, kwargs: Mapping[str, Any], task_id: str) -> None:
        self.queue.append((str(task_name), dict(kwargs)))

    def drain(self) -> None:
        while self.queue:
            task, kwargs = self.queue.pop(0)
            if task == TaskName.PLAN_STEP:
                self.pipeline.plan_step(uuid.UUID(kwargs["request_id"]), int(kwargs["seq"]))
            elif task == TaskName.RUN_SUBTASK:
                executor = Executor(kwargs["executor"])
                self.pipeline.run_subtask(uuid.UUID(kwargs["subtask_id"]), executor, tier=kwargs.get("tier"))
            elif task == TaskName.VERIFY_STEP:
                self.pipeline.verify_step(uuid.UUID(kwargs["subtask_id"]))

    def run(self, requests: int, seed: int) -> tuple[list[uuid.UUID], Counts, float, float]:
        submit(self.runtime.sessions, self.dispatcher, generate("mixed", 3, seed + 1), "random")
        self.drain()  # warm: backends, policy, compiled statements
        ids = submit(self.runtime.sessions, self.dispatcher, generate("mixed", requests, seed), "random")
        with counting(self.runtime.engine) as counter:
            cpu, wall = time.process_time(), time.perf_counter()
            self.drain()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return ids, counter.snapshot(), cpu, wall

    def work(self, ids: list[uuid.UUID]) -> tuple[int, int]:
        with session_scope(self.runtime.sessions) as session:
            decisions = session.scalar(select(func.count()).where(Decision.request_id.in_(ids)))
            calls = session.scalar(select(func.count()).where(ModelCall.request_id.in_(ids)))
            steps = session.scalar(select(func.sum(Request.slm_steps + Request.llm_steps)).where(Request.id.in_(ids)))
        return int(decisions or 0) + int(calls or 0), int(steps or 0)


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hera-hop-cost-") as tmp:
        url = f"sqlite:///{tmp}/hera.db"
        upgrade(url)
        yield url


def measure(label: str, url: str, requests: int, seed: int, *, pipelined: bool = True) -> Measured:
    with tempfile.TemporaryDirectory(prefix="hera-hop-cost-") as tmp:
        driver = Driver(url, Path(tmp), pipelined=pipelined)
        try:
            database_cpu = postgres_backend_cpu(url) if url.startswith("postgresql") else None
            before = database_cpu() if database_cpu is not None else None
            ids, counts, cpu, wall = driver.run(requests, seed)
            used = database_cpu() - before if database_cpu is not None and before is not None else None
            hops, subtasks = driver.work(ids)
        finally:
            driver.runtime.close()
    return Measured(label, hops, subtasks, counts, cpu, wall, used)


def report(results: list[Measured], requests: int, load: tuple[str, str]) -> str:
    lines = [
        f"{requests} `random` requests (`mixed`), hops called in one thread without a broker (SIMULATED models, "
        f"zero latency); load average {load[0]} at the start, {load[1]} at the end.",
        "",
        "| database | hops | statements / hop | write transactions / hop | round trips / hop | worker CPU ms / hop "
        "| wall ms / hop | Postgres CPU ms / routed subtask | routed subtasks/s per Postgres core "
        "| worker cores per Postgres core |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        per = r.counts.per(r.hops)
        worker_ms = r.cpu_s * 1e3 / r.hops
        cells = ["n/a", "n/a", "n/a"]
        if r.database_cpu_s:
            pg_ms = r.database_cpu_s * 1e3 / r.subtasks
            per_core = 1e3 / pg_ms
            cells = [f"{pg_ms:.2f}", f"{per_core:,.0f}", f"{per_core * 2 * worker_ms / 1e3:.1f}"]
        lines.append(
            f"| {r.label} | {r.hops} | {per['statements']:.2f} | {per['transactions']:.2f} | {per['round_trips']:.2f} "
            f"| {worker_ms:.2f} | {r.wall_s * 1e3 / r.hops:.2f} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load_before = loadavg()
    results: list[Measured] = []
    with fresh_postgres_database("hera_hop_cost") as url:
        upgrade(url)
        results.append(measure("Postgres, `HERA_DB_PIPELINE=true`", url, args.requests, args.seed))
    with fresh_postgres_database("hera_hop_cost") as url:
        upgrade(url)
        label = "Postgres, default (`HERA_DB_PIPELINE=false`)"
        results.append(measure(label, url, args.requests, args.seed, pipelined=False))
    with sqlite_url() as url:
        results.append(measure("SQLite", url, args.requests, args.seed))
    print(report(results, args.requests, (load_before, loadavg())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
