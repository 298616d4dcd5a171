"""The agent pipeline's own overhead, next to raw Celery measured in the same run.

Zero-latency simulated models (``sim`` backends in-process in the workers; the simulator reports a
latency but does not sleep), so what is left is queues, the database and the pipeline's code:

(a) raw no-op throughput: N no-op tasks published at once, tasks/s until the last one finished;
(b) raw hop time: a task that publishes its successor, H hops, ms/hop;
(c) pipeline throughput: M simulated requests in flight at once, routed subtasks/s (executed
    steps / wall time; every step is two hops: ``routing.plan_step`` and ``execution.run_subtask``);
(d) pipeline per-hop latency: K requests one after the other, request wall time / hops.

Distributed mode: local Redis, a fresh Postgres database (dropped at the end), ``hera-router
worker`` subprocesses on queue names unique to the run: router (prefork), edge and cloud (threads),
and two baseline workers that load ``benchmarks/bench_pipeline_tasks.py`` with the router's pool
and with the edge/cloud pool. Embedded mode: ``embedded_system`` (SQLite, ``memory://``, one
in-process thread worker for every queue), with its raw baselines on the same in-process worker.

    .venv/bin/python benchmarks/bench_pipeline.py            # full run, writes results/pipeline.md
    .venv/bin/python benchmarks/bench_pipeline.py --quick    # smaller, one to two minutes
    .venv/bin/python benchmarks/bench_pipeline.py --profile  # + where the time goes, both modes
    .venv/bin/python benchmarks/bench_pipeline.py --cprofile # + cProfile of the embedded mode (stdout)

``--profile`` adds separate passes after the measured ones (the timers cost a little): in-process
timers in embedded mode, and in distributed mode fresh router/edge/cloud workers that load the
timers through ``benchmarks/bench_pipeline_tasks.py`` and report their totals through Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.` and `hera_router` from a checkout
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import redis
from celery import signals
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from benchmarks import bench_pipeline_tasks as raw
from hera_router.config import QueueNames, Settings, load_settings
from hera_router.db.counting import Counts, StatementCounter
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES
from hera_router.db.migrate import upgrade
from hera_router.db.models import Decision, ModelCall, Request
from hera_router.db.repositories import OutboxRepository, RequestRepository, TenantRepository
from hera_router.db.session import session_scope
from hera_router.pipeline import outbox as outbox_module
from hera_router.pipeline import services as services_module
from hera_router.pipeline.execution import ExecutionHop
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.pipeline.outbox import Dispatcher
from hera_router.pipeline.routing import RoutingHop
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import TaskRecord, generate
from hera_router.workers import HeraCelery, Queue, create_app
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.queues import physical_name
from hera_router.workers.system import embedded_system

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "pipeline.md"
OBSERVATIONS_HEADING = "## Where the time goes"
POSTGRES_ADMIN_URL = os.environ.get("HERA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HERA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WARMUP_REQUESTS = 6


# -- results -------------------------------------------------------------------------------------


@dataclass
class Baseline:
    worker: str
    noop_tasks: int
    noop_wall_s: float
    chain_hops: int
    chain_wall_s: float

    @property
    def noop_per_s(self) -> float:
        return self.noop_tasks / self.noop_wall_s

    @property
    def ms_per_hop(self) -> float:
        return self.chain_wall_s * 1e3 / self.chain_hops


@dataclass
class Throughput:
    requests: int
    subtasks: int
    hops: int
    wall_s: float
    statuses: dict[str, int]
    errors: dict[str, int] = field(default_factory=dict)
    counts: Counts | None = None
    """Statements, write transactions and round trips of every process that ran hops in the pass."""
    database_cpu_s: float | None = None
    """CPU seconds of the Postgres backends serving the run's database during the pass."""

    @property
    def database_cpu_ms_per_subtask(self) -> float | None:
        if self.database_cpu_s is None or not self.subtasks:
            return None
        return self.database_cpu_s * 1e3 / self.subtasks

    @property
    def subtasks_per_s(self) -> float:
        return self.subtasks / self.wall_s

    @property
    def hops_per_s(self) -> float:
        return self.hops / self.wall_s


@dataclass
class Sequential:
    walls_s: list[float] = field(default_factory=list)
    hops: list[int] = field(default_factory=list)

    @property
    def ms_per_hop(self) -> float:
        return sum(self.walls_s) * 1e3 / sum(self.hops)

    @property
    def median_ms_per_hop(self) -> float:
        return statistics.median(w * 1e3 / h for w, h in zip(self.walls_s, self.hops, strict=True))

    @property
    def mean_hops(self) -> float:
        return sum(self.hops) / len(self.hops)


@dataclass
class Breakdown:
    """Hop timers summed over every process that ran tasks during one pass."""

    label: str
    wall_s: float
    hops: int
    counters: dict[str, list[float]]


@dataclass
class ModeResult:
    mode: str
    setup: str
    baselines: list[Baseline]
    throughput: Throughput
    sequential: Sequential
    primary: str = ""
    """The baseline worker the ratios use (the router worker's pool)."""
    breakdowns: list[Breakdown] = field(default_factory=list)

    def baseline(self) -> Baseline:
        return next(b for b in self.baselines if b.worker == self.primary)


# -- shared pieces ---------------------------------------------------------------------------------


def submit(
    sessions: sessionmaker[Session], dispatcher: Dispatcher, tasks: Sequence[TaskRecord], policy: str
) -> list[uuid.UUID]:
    """Write the requests and their first router hop in one transaction, then publish (the API's job)."""
    ids: list[uuid.UUID] = []
    queued: list[uuid.UUID] = []
    with session_scope(sessions) as session:
        tenants = TenantRepository(session)
        tenant = tenants.by_name("bench-pipeline") or tenants.create("bench-pipeline")
        for task in tasks:
            request = RequestRepository(session).add(
                tenant_id=tenant.id, input=task.request, policy=policy, custom_id=task.id, gold_answer=task.gold
            )
            ids.append(request.id)
            kwargs = {"request_id": str(request.id), "seq": 0}
            queued.append(dispatcher.enqueue(session, TaskName.PLAN_STEP, kwargs, plan_task_id(request.id, 0)))
    dispatcher.publish(queued)
    return ids


def wait_finished(
    sessions: sessionmaker[Session], ids: Sequence[uuid.UUID], timeout_s: float, interval_s: float
) -> float:
    """Wait until every request is terminal; return the time of the last one's final update."""
    terminal = list(TERMINAL_REQUEST_STATUSES)
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(sessions) as session:
            open_count = session.scalar(
                select(func.count()).select_from(Request).where(Request.id.in_(ids), Request.status.not_in(terminal))
            )
        if not open_count:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{open_count} of {len(ids)} requests unfinished after {timeout_s:.0f} s")
        time.sleep(interval_s)
    with session_scope(sessions) as session:
        last = session.scalar(select(func.max(Request.updated_at)).where(Request.id.in_(ids)))
    assert last is not None
    return last.timestamp()


def count_work(
    sessions: sessionmaker[Session], ids: Sequence[uuid.UUID]
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(executed subtasks, hops, statuses, errors): a hop is one router decision or one model call."""
    with session_scope(sessions) as session:
        decisions = session.scalar(select(func.count()).select_from(Decision).where(Decision.request_id.in_(ids)))
        calls = session.scalar(select(func.count()).select_from(ModelCall).where(ModelCall.request_id.in_(ids)))
        steps = session.scalar(
            select(func.coalesce(func.sum(Request.slm_steps + Request.llm_steps), 0)).where(Request.id.in_(ids))
        )
        by_status = select(Request.status, func.count()).where(Request.id.in_(ids)).group_by(Request.status)
        statuses = dict(session.execute(by_status).all())
        by_error = select(Request.error, func.count()).where(Request.id.in_(ids), Request.error.is_not(None))
        errors = dict(session.execute(by_error.group_by(Request.error)).all())
    hops = int(decisions or 0) + int(calls or 0)
    return int(steps or 0), hops, {s.value: n for s, n in statuses.items()}, errors


_observers: dict[str, tuple[Engine, sessionmaker[Session]]] = {}


def observer(app: HeraCelery) -> sessionmaker[Session]:
    """Sessions for watching progress that never get in the workers' way.

    A separate plain engine: on SQLite the product's engine opens every transaction with ``BEGIN
    IMMEDIATE`` (the write lock), so polling through it would queue behind, and stall, the workers'
    writes; a plain pysqlite connection reads in autocommit, which WAL lets run beside a writer.
    """
    url = app.settings.database_url
    if url not in _observers:
        engine = create_engine(url)
        _observers[url] = (engine, sessionmaker(bind=engine, expire_on_commit=False))
    return _observers[url][1]


def is_observer(engine: Any) -> bool:
    return any(engine is observed for observed, _ in _observers.values())


def close_observers() -> None:
    while _observers:
        _, (engine, _) = _observers.popitem()
        engine.dispose()


def run_throughput(
    app: HeraCelery,
    tasks: Sequence[TaskRecord],
    policy: str,
    timeout_s: float,
    counts: Callable[[], Counts] | None = None,
    database_cpu: Callable[[], float] | None = None,
) -> Throughput:
    """Pass (c). ``counts``: the running statement totals of the processes that run hops (read
    before and after the pass); ``database_cpu``: the database server's CPU seconds so far."""
    counts_before = counts() if counts is not None else None
    cpu_before = database_cpu() if database_cpu is not None else None
    started = time.time()
    ids = submit(app.hera_runtime.sessions, celery_dispatcher(app), tasks, policy)
    finished = wait_finished(observer(app), ids, timeout_s, interval_s=0.05)
    cpu = database_cpu() - cpu_before if database_cpu is not None and cpu_before is not None else None
    counted = minus(counts(), counts_before) if counts is not None and counts_before is not None else None
    subtasks, hops, statuses, errors = count_work(observer(app), ids)
    return Throughput(len(ids), subtasks, hops, finished - started, statuses, errors, counted, cpu)


def minus(after: Counts, before: Counts) -> Counts:
    return Counts(
        after.statements - before.statements,
        after.transactions - before.transactions,
        after.round_trips - before.round_trips,
    )


def worker_counts(client: redis.Redis, run: str) -> Callable[[], Counts]:
    """The summed statement counts the workers of ``run`` flush to Redis (``HERA_BENCH_COUNTS``)."""
    pattern = raw.counts_key(run, 0).rsplit(":", 1)[0] + ":*"

    def read() -> Counts:
        time.sleep(0.5)  # every process flushes its totals every 0.2 s
        total = Counts()
        for key in client.scan_iter(match=pattern):
            flushed = json.loads(client.get(key) or "{}")
            total.statements.update(flushed.get("statements", {}))
            total.transactions += int(flushed.get("transactions", 0))
            total.round_trips += int(flushed.get("round_trips", 0))
        return total

    return read


def postgres_backend_cpu(database_url: str) -> Callable[[], float]:
    """CPU seconds (user + system, from ``/proc/<pid>/stat``) of the server processes connected
    to ``database_url``'s database: the backends serving this run's workers (pooled connections
    stay open through a pass). Shared server processes (WAL writer, checkpointer) and other
    databases are not counted; a backend that exits during a pass loses its last interval."""
    url = make_url(database_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    ticks = os.sysconf("SC_CLK_TCK")
    seen: dict[int, float] = {}

    def read() -> float:
        with admin.connect() as conn:
            pids = (
                conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": url.database},
                )
                .scalars()
                .all()
            )
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seen[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return sum(seen.values())

    return read


def run_sequential(app: HeraCelery, tasks: Sequence[TaskRecord], policy: str, timeout_s: float) -> Sequential:
    result = Sequential()
    for task in tasks:
        started = time.time()
        ids = submit(app.hera_runtime.sessions, celery_dispatcher(app), [task], policy)
        finished = wait_finished(observer(app), ids, timeout_s, interval_s=0.005)
        _, hops, _, _ = count_work(observer(app), ids)
        result.walls_s.append(finished - started)
        result.hops.append(hops)
    return result


def pipeline_tasks(args: argparse.Namespace) -> tuple[list[TaskRecord], list[TaskRecord], list[TaskRecord]]:
    """Warm-up, throughput and sequential request sets: disjoint slices of one generated set."""
    tasks = generate("mixed", WARMUP_REQUESTS + args.requests + args.sequential, args.seed)
    warm = tasks[:WARMUP_REQUESTS]
    return warm, tasks[WARMUP_REQUESTS : WARMUP_REQUESTS + args.requests], tasks[WARMUP_REQUESTS + args.requests :]


# -- distributed mode ------------------------------------------------------------------------------


@contextmanager
def fresh_postgres_database(prefix: str = "hera_bench") -> Iterator[str]:
    """An empty database on the local server, dropped on exit (as tests/conftest.py does)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class WorkerProcess:
    label: str
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


class Workers:
    """``hera-router worker`` subprocesses, each in its own session so Ctrl-C reaches only us;
    :meth:`stop` ends them (warm shutdown, then SIGKILL of their process group)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []
        self.ready: set[str] = set()

    def start(
        self,
        label: str,
        queue: str,
        pool: str,
        concurrency: int,
        extra: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        name = f"{label}-{uuid.uuid4().hex[:6]}@localhost"
        log_path = self.log_dir / f"worker-{name.split('@', maxsplit=1)[0]}.log"
        command = [
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
            name,
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(label, name, process, log_path)
        self.started.append(worker)
        return worker

    def wait_ready(self, app: HeraCelery, timeout_s: float = 120.0) -> None:
        waiting = {w.name: w for w in self.started if w.name not in self.ready}
        log(f"waiting for {len(waiting)} workers")
        deadline = time.monotonic() + timeout_s
        while waiting:
            for worker in waiting.values():
                if worker.process.poll() is not None:
                    code = worker.process.returncode
                    raise RuntimeError(f"worker {worker.name} exited with {code}:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready after {timeout_s:.0f} s: {sorted(waiting)}")
            for reply in app.control.ping(destination=list(waiting), timeout=1.0) or []:
                for name in reply:
                    waiting.pop(name, None)
                    self.ready.add(name)

    def stop(self, labels: Collection[str] | None = None) -> None:
        stopping = [w for w in self.started if labels is None or w.label in labels]
        for worker in stopping:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in stopping:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait(timeout=30)
        # A prefork child whose parent was killed is in the parent's process group: sweep it too.
        for worker in stopping:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.process.pid, signal.SIGKILL)
        self.started = [w for w in self.started if w not in stopping]


def settings_from(env: dict[str, str]) -> Settings:
    """The settings the workers will read from ``env``, for this process's producer."""
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


def wait_redis_done(client: redis.Redis, key: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while (value := client.get(f"{key}:done")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key}: {client.get(key)!r} completions after {timeout_s:.0f} s")
        time.sleep(0.002)
    return float(value)


def redis_baseline(
    app: HeraCelery,
    client: redis.Redis,
    worker: str,
    queue: str,
    args: argparse.Namespace,
    concurrency: int,
    suffix: str,
) -> Baseline:
    """(a) and (b) on one worker; its keys live under ``bench:<suffix>:`` (swept at the end too)."""
    run = f"{suffix}:{uuid.uuid4().hex[:6]}"

    def noop(n: int, key: str) -> float:
        started = time.time()
        for _ in range(n):
            app.send_task(raw.NOOP_TASK, kwargs={"sink": REDIS_URL, "key": key, "total": n}, queue=queue)
        return wait_redis_done(client, key, args.timeout) - started

    def chain(hops: int, key: str) -> float:
        started = time.time()
        kwargs = {"sink": REDIS_URL, "key": key, "remaining": hops, "queue": queue}
        app.send_task(raw.CHAIN_TASK, kwargs=kwargs, queue=queue)
        return wait_redis_done(client, key, args.timeout) - started

    try:
        noop(concurrency * 10, f"bench:{run}:warm")  # every pool child/thread has run a task
        noop_wall = noop(args.noop, f"bench:{run}:noop")
        chain_wall = chain(args.hops, f"bench:{run}:chain")
    finally:
        client.delete(*[f"bench:{run}:{k}{s}" for k in ("warm", "noop", "chain") for s in ("", ":done")])
    return Baseline(worker, args.noop, noop_wall, args.hops, chain_wall)


@dataclass
class Deployment:
    """A distributed deployment on queue names unique to the run (see :func:`distributed_deployment`)."""

    app: HeraCelery
    client: redis.Redis
    workers: Workers
    queues: QueueNames
    suffix: str
    database_url: str


@contextmanager
def distributed_deployment(args: argparse.Namespace) -> Iterator[Deployment]:
    """Redis, a fresh Postgres database and the workers: the two raw baseline workers (the
    router's pool on the maintenance queue, the edge/cloud pool on the training queue, both
    otherwise idle here) and the pipeline's router, edge and cloud; all ready, stopped on exit."""
    suffix = uuid.uuid4().hex[:8]
    queues = QueueNames(**{name: f"bench{suffix}-{name}" for name in QueueNames.model_fields})
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    with ExitStack() as stack:
        stack.callback(client.close)
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hera-bench-")))
        database_url = stack.enter_context(fresh_postgres_database())
        upgrade(database_url)
        stack.callback(close_observers)
        env_settings = {
            "HERA_MODE": "distributed",
            "HERA_BROKER_URL": REDIS_URL,
            "HERA_REDIS_URL": REDIS_URL,
            "HERA_DATABASE_URL": database_url,
            "HERA_DATA_DIR": os.environ.get("HERA_BENCH_DATA_DIR", str(log_dir)),
            "HERA_SIMULATOR__SEED": str(args.seed),
            "HERA_EDGE__BACKEND": "sim",
            "HERA_EDGE__MODEL": "sim-slm",
            "HERA_CLOUD__BACKEND": "sim",
            "HERA_CLOUD__MODEL": "sim-llm",
            "HERA_LOG_LEVEL": args.loglevel,
            **{f"HERA_QUEUES__{name.upper()}": value for name, value in queues.model_dump().items()},
        }
        env = {**os.environ, **env_settings, "PYTHONPATH": str(REPO)}
        settings = settings_from(env_settings)
        app = create_app(settings)
        stack.callback(app.hera_runtime.close)
        stack.callback(_forget_queues, client, queues)
        stack.callback(_forget_keys, client, f"bench:{suffix}*")  # after the workers stopped writing
        workers = Workers(env, log_dir)
        stack.callback(workers.stop)
        include = ("-I", "benchmarks.bench_pipeline_tasks")
        workers.start("raw-router-pool", "maintenance", args.router_pool, args.router_concurrency, include)
        workers.start("raw-exec-pool", "training", "threads", args.exec_concurrency, include)
        # The pipeline's workers count their statements (one event callback per statement).
        start_pipeline_workers(workers, args, extra=include, env={raw.COUNTS_ENV: suffix})
        try:
            workers.wait_ready(app)
            log(f"distributed: {len(workers.started)} workers ready")
            yield Deployment(app, client, workers, queues, suffix, database_url)
        except BaseException:
            for worker in workers.started:
                print(f"--- {worker.name}\n{worker.tail()}", file=sys.stderr)
            raise


def run_distributed(args: argparse.Namespace) -> ModeResult:
    router_pool = f"{args.router_pool} -c {args.router_concurrency}"
    exec_pool = f"threads -c {args.exec_concurrency}"
    with distributed_deployment(args) as deployment:
        app, client, suffix, queues = deployment.app, deployment.client, deployment.suffix, deployment.queues
        log("distributed: raw Celery baselines")
        baselines = [
            redis_baseline(app, client, router_pool, queues.maintenance, args, args.router_concurrency, suffix),
            redis_baseline(app, client, exec_pool, queues.training, args, args.exec_concurrency, suffix),
        ]
        warm, batch, one_by_one = pipeline_tasks(args)
        run_throughput(app, warm, args.policy, args.timeout)  # fork children build policy, engine, world
        log(f"distributed: pipeline throughput, {len(batch)} requests")
        throughput = run_throughput(
            app,
            batch,
            args.policy,
            args.timeout,
            worker_counts(client, suffix),
            postgres_backend_cpu(deployment.database_url),
        )
        log(f"distributed: pipeline latency, {len(one_by_one)} requests one at a time")
        sequential = run_sequential(app, one_by_one, args.policy, args.timeout)
        breakdowns = profile_distributed(app, deployment.workers, client, args, suffix) if args.profile else []
    setup = (
        f"Redis 127.0.0.1:6379, Postgres (fresh database); router `{router_pool}`, edge and cloud `{exec_pool}` "
        "(one process each), no beat (so no outbox relay or reconciler ticks); raw baselines: a worker with the "
        "router's pool and one with the edge/cloud pool"
    )
    return ModeResult("distributed", setup, baselines, throughput, sequential, router_pool, breakdowns)


def start_pipeline_workers(workers: Workers, args: argparse.Namespace, **options: Any) -> None:
    workers.start("router", "router", args.router_pool, args.router_concurrency, **options)
    workers.start("edge", "edge", "threads", args.exec_concurrency, **options)
    workers.start("cloud", "cloud", "threads", args.exec_concurrency, **options)


def profile_distributed(
    app: HeraCelery, workers: Workers, client: redis.Redis, args: argparse.Namespace, run: str
) -> list[Breakdown]:
    """Fresh router/edge/cloud workers with hop timers (reported through Redis), then the passes."""
    workers.stop({"router", "edge", "cloud"})
    include = ("-I", "benchmarks.bench_pipeline_tasks")
    start_pipeline_workers(workers, args, extra=include, env={raw.TIMERS_ENV: run})
    pattern = raw.timers_key(run, 0).rsplit(":", 1)[0] + ":*"

    def snapshot() -> dict[str, list[float]]:
        time.sleep(0.6)  # every process flushes its totals every 0.2 s
        totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        for key in client.scan_iter(match=pattern):
            for label, (calls, seconds) in json.loads(client.get(key) or "{}").items():
                totals[label][0] += calls
                totals[label][1] += seconds
        return dict(totals)

    # The producer stamps the first hop's publish time too.
    signals.before_task_publish.connect(raw.stamp_sent_at, weak=False)
    try:
        workers.wait_ready(app)
        run_throughput(app, pipeline_tasks(args)[0], args.policy, args.timeout)
        log("distributed: profile passes (hop timers in the workers)")
        return measure_passes(app, args, snapshot)
    finally:
        signals.before_task_publish.disconnect(raw.stamp_sent_at)


def _forget_keys(client: redis.Redis, pattern: str) -> None:
    keys = list(client.scan_iter(match=pattern))
    if keys:
        client.delete(*keys)


def _forget_queues(client: redis.Redis, queues: QueueNames) -> None:
    """Remove the run's kombu bindings (its queue lists are empty once its workers drained them)."""
    for name in queues.model_dump().values():
        client.delete(f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}", name)


# -- embedded mode ---------------------------------------------------------------------------------


def embedded_settings(args: argparse.Namespace, data_dir: Path) -> Settings:
    return load_settings(
        mode="embedded",
        data_dir=data_dir,
        database_url="",
        broker_url="",
        simulator={"seed": args.seed},
        edge={"backend": "sim", "model": "sim-slm"},
        cloud={"backend": "sim", "model": "sim-llm"},
        log_level=args.loglevel,
    )


def local_baseline(app: HeraCelery, worker: str, args: argparse.Namespace) -> Baseline:
    queue = physical_name(Queue.MAINTENANCE, app.settings.queues)
    run = uuid.uuid4().hex[:8]

    def wait(key: str) -> float:
        if not raw.local_event(key).wait(args.timeout):
            raise TimeoutError(f"{key}: {raw.local_count(key)} completions after {args.timeout:.0f} s")
        done = raw.local_done_at(key)
        assert done is not None
        return done

    def noop(n: int, key: str) -> float:
        started = time.time()
        for _ in range(n):
            app.send_task(raw.NOOP_TASK, kwargs={"sink": raw.LOCAL_SINK, "key": key, "total": n}, queue=queue)
        return wait(key) - started

    def chain(hops: int, key: str) -> float:
        started = time.time()
        kwargs = {"sink": raw.LOCAL_SINK, "key": key, "remaining": hops, "queue": queue}
        app.send_task(raw.CHAIN_TASK, kwargs=kwargs, queue=queue)
        return wait(key) - started

    noop(40, f"{run}:warm")
    noop_wall = noop(args.noop, f"{run}:noop")
    chain_wall = chain(args.hops, f"{run}:chain")
    return Baseline(worker, args.noop, noop_wall, args.hops, chain_wall)


def run_embedded(args: argparse.Namespace) -> ModeResult:
    worker = f"threads -c {args.embedded_concurrency}"
    # A late write of the stopped system's threads (the SQLite WAL) must not fail the run at cleanup.
    with tempfile.TemporaryDirectory(prefix="hera-bench-", ignore_cleanup_errors=True) as tmp, ExitStack() as stack:
        stack.callback(close_observers)
        settings = embedded_settings(args, Path(tmp))
        with embedded_system(settings, concurrency=args.embedded_concurrency) as system:
            log("embedded: raw Celery baselines on memory://")
            baselines = [local_baseline(system.app, worker, args)]
            warm, batch, one_by_one = pipeline_tasks(args)
            run_throughput(system.app, warm, args.policy, args.timeout)
            log(f"embedded: pipeline throughput, {len(batch)} requests")
            counter = StatementCounter(system.app.hera_runtime.engine)
            counter.install()
            try:
                throughput = run_throughput(system.app, batch, args.policy, args.timeout, counter.snapshot)
            finally:
                counter.uninstall()
            log(f"embedded: pipeline latency, {len(one_by_one)} requests one at a time")
            sequential = run_sequential(system.app, one_by_one, args.policy, args.timeout)
            breakdowns: list[Breakdown] = []
            if args.profile:
                log("embedded: profile passes (hop timers in this process)")
                timer = HopTimer(skip_main_thread=True)
                timer.install()
                try:
                    breakdowns = measure_passes(system.app, args, timer.snapshot)
                finally:
                    timer.uninstall()
    setup = (
        f"`memory://` (polling interval {settings.memory_polling_interval_s * 1e3:g} ms), SQLite (WAL, "
        f"`BEGIN IMMEDIATE`), one in-process worker `{worker}` for every queue, maintenance thread on; "
        "raw baselines on the same worker"
    )
    return ModeResult("embedded", setup, baselines, throughput, sequential, worker, breakdowns)


# -- where the time goes (embedded) --------------------------------------------------------------


class HopTimer:
    """Time the pieces of a hop in this process. Thread-safe; (calls, seconds) per label.

    Wrappers on the pipeline's methods and on ``session_scope`` where the pipeline and the
    dispatcher use it (patched on the classes and modules, restored by :meth:`uninstall`), every
    SQL statement by verb (SQLite's ``BEGIN IMMEDIATE`` is one; Postgres's implicit BEGIN is not a
    statement), the time a message spent in the broker (a publish-time header, so it works across
    processes) and the task body from Celery's signals.
    """

    # (owner, method, timer label or None, context or None): a context names the code that ran
    # the first statement of a transaction, i.e. the one that waited at its BEGIN.
    WRAPPED: tuple[tuple[type, str, str | None, str | None], ...] = (
        (RoutingHop, "plan_step", "plan_step: whole task body", None),
        (ExecutionHop, "run_subtask", "run_subtask: whole task body", None),
        (ExecutionHop, "_claim", "run_subtask: claim (one transaction: claim, prompt, call intent)", None),
        (ExecutionHop, "_complete", "run_subtask: complete (inside its transaction)", None),
        (SimBackend, "generate", "run_subtask: sim model call", None),
        (Dispatcher, "publish", "after commit: Dispatcher.publish (send; the marks ride on a later transaction)", None),
        (Dispatcher, "flush_marks", "idle flush of outbox marks (own transaction)", None),
        (Session, "commit", "Session.commit (flush + COMMIT)", None),
        (OutboxRepository, "by_ids", None, "outbox read after commit"),
        (OutboxRepository, "mark_published", None, "outbox mark published"),
        (OutboxRepository, "claim_unpublished", None, "relay claim"),
    )
    SCOPES: tuple[tuple[Any, str, str | None], ...] = (
        (services_module, "transactions: pipeline work (session_scope)", "pipeline work"),
        (outbox_module, "transactions: outbox read/idle mark flush/relay (session_scope)", None),
    )

    def __init__(self, *, skip_main_thread: bool = False) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        # Embedded mode: the benchmark's own thread (submitting, watching) is not part of a hop.
        self.skip_main_thread = skip_main_thread
        self._patched: list[tuple[Any, str, Any]] = []
        self._statements: dict[int, float] = {}
        self._running: dict[str, float] = {}
        self._context = threading.local()

    def _push(self, context: str | None) -> None:
        if context is not None:
            self._context.__dict__.setdefault("stack", []).append(context)

    def _pop(self, context: str | None) -> None:
        if context is not None:
            self._context.stack.pop()

    def add(self, label: str, seconds: float) -> None:
        if self.skip_main_thread and threading.current_thread() is threading.main_thread():
            return
        with self.lock:
            entry = self.values[label]
            entry[0] += 1
            entry[1] += seconds

    def snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {label: list(entry) for label, entry in self.values.items()}

    def _wrap(self, owner: type, name: str, label: str | None, context: str | None) -> None:
        original = owner.__dict__[name]
        is_static = isinstance(original, staticmethod)
        target = original.__func__ if is_static else original

        def timed(*a: Any, **k: Any) -> Any:
            if owner is Session and is_observer(a[0].get_bind()):
                return target(*a, **k)
            started = time.perf_counter()
            self._push(context)
            try:
                return target(*a, **k)
            finally:
                self._pop(context)
                if label is not None:
                    self.add(label, time.perf_counter() - started)

        setattr(owner, name, staticmethod(timed) if is_static else timed)
        self._patched.append((owner, name, original))

    def _wrap_scope(self, module: Any, label: str, context: str | None) -> None:
        original = module.session_scope

        @contextmanager
        def timed(factory: sessionmaker[Session]) -> Iterator[Session]:
            started = time.perf_counter()
            self._push(context)
            try:
                with original(factory) as session:
                    yield session
            finally:
                self._pop(context)
                self.add(label, time.perf_counter() - started)

        module.session_scope = timed
        self._patched.append((module, "session_scope", original))

    def _before_sql(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self._statements[id(cursor)] = time.perf_counter()

    def _after_sql(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started = self._statements.pop(id(cursor), None)
        if started is not None and not is_observer(conn.engine):
            words = statement.split(maxsplit=2)
            if words[0] == "BEGIN":
                stack = self._context.__dict__.get("stack") or ["other"]
                self.add(
                    f"SQL {' '.join(words[:2])} (waits for the write lock), in {stack[-1]}",
                    time.perf_counter() - started,
                )
            else:
                self.add(f"SQL {words[0]}", time.perf_counter() - started)

    def _on_prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        self._running[task_id or ""] = time.perf_counter()
        sent = task.request.get(raw.SENT_AT_HEADER)
        if sent is not None:
            self.add(f"broker: published -> started ({task.name})", max(0.0, time.time() - float(sent)))

    def _on_postrun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        started = self._running.pop(task_id or "", None)
        if started is not None:
            self.add(f"task: started -> returned ({task.name})", time.perf_counter() - started)

    def install(self) -> None:
        for owner, name, label, context in self.WRAPPED:
            self._wrap(owner, name, label, context)
        for module, label, context in self.SCOPES:
            self._wrap_scope(module, label, context)
        event.listen(Engine, "before_cursor_execute", self._before_sql)
        event.listen(Engine, "after_cursor_execute", self._after_sql)
        signals.before_task_publish.connect(raw.stamp_sent_at, weak=False)
        signals.task_prerun.connect(self._on_prerun, weak=False)
        signals.task_postrun.connect(self._on_postrun, weak=False)

    def uninstall(self) -> None:
        signals.before_task_publish.disconnect(raw.stamp_sent_at)
        signals.task_prerun.disconnect(self._on_prerun)
        signals.task_postrun.disconnect(self._on_postrun)
        event.remove(Engine, "before_cursor_execute", self._before_sql)
        event.remove(Engine, "after_cursor_execute", self._after_sql)
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()


def subtract(after: dict[str, list[float]], before: dict[str, list[float]]) -> dict[str, list[float]]:
    delta = {}
    for label, (calls, seconds) in after.items():
        was = before.get(label, [0, 0.0])
        if calls - was[0] > 0:
            delta[label] = [calls - was[0], seconds - was[1]]
    return delta


def measure_passes(
    app: HeraCelery, args: argparse.Namespace, snapshot: Callable[[], dict[str, list[float]]]
) -> list[Breakdown]:
    """Run K requests one at a time, then M/2 in flight (to keep ``--profile`` short); timer totals
    before/after each pass."""
    _, batch, one_by_one = pipeline_tasks(args)
    batch = batch[: max(1, len(batch) // 2)]
    breakdowns = []
    before = snapshot()
    sequential = run_sequential(app, one_by_one, args.policy, args.timeout)
    middle = snapshot()
    label = f"{len(one_by_one)} requests one at a time"
    breakdowns.append(Breakdown(label, sum(sequential.walls_s), sum(sequential.hops), subtract(middle, before)))
    throughput = run_throughput(app, batch, args.policy, args.timeout)
    label = f"{len(batch)} requests in flight"
    breakdowns.append(Breakdown(label, throughput.wall_s, throughput.hops, subtract(snapshot(), middle)))
    return breakdowns


@contextmanager
def profile_all_threads() -> Iterator[list[cProfile.Profile]]:
    """cProfile every thread started inside the block (Python 3.11 has no all-threads hook for
    threads already running, so start the embedded system inside it)."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_profiler(*_: Any) -> None:
        profiler = cProfile.Profile()
        with lock:
            profiles.append(profiler)
        profiler.enable()  # replaces this hook for the rest of the thread

    threading.setprofile(start_profiler)
    main = cProfile.Profile()
    profiles.append(main)
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]


def run_cprofile(args: argparse.Namespace) -> str:
    """cProfile of every thread of a fresh embedded system running K requests one at a time."""
    warm, _, one_by_one = pipeline_tasks(args)
    log(f"cprofile: {len(one_by_one)} requests one at a time (embedded, every thread)")
    with tempfile.TemporaryDirectory(prefix="hera-bench-") as tmp, ExitStack() as stack:
        stack.callback(close_observers)
        with profile_all_threads() as profiles:
            settings = embedded_settings(args, Path(tmp))
            with embedded_system(settings, concurrency=args.embedded_concurrency) as system:
                run_throughput(system.app, warm, args.policy, args.timeout)
                run_sequential(system.app, one_by_one, args.policy, args.timeout)
    stats: pstats.Stats | None = None
    for profiler in profiles:
        with contextlib.suppress(TypeError):  # a profiler that never saw a call has no stats
            stats = pstats.Stats(profiler) if stats is None else stats.add(profiler)
    out = io.StringIO()
    if stats is not None:
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats("hera_router", 30)
    return out.getvalue()


# -- report ----------------------------------------------------------------------------------------


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_rows(r: ModeResult) -> list[str]:
    b = r.baseline()
    t, s = r.throughput, r.sequential
    return [
        f"| {r.mode} | (c) routed subtasks/s, {t.requests} requests in flight | {fmt(t.subtasks_per_s)} "
        f"| (a) {fmt(b.noop_per_s)} no-op tasks/s | {t.subtasks_per_s / b.noop_per_s:.3f} |",
        f"| {r.mode} | (c) pipeline hops/s (2 per subtask) | {fmt(t.hops_per_s)} "
        f"| (a) {fmt(b.noop_per_s)} no-op tasks/s | {t.hops_per_s / b.noop_per_s:.3f} |",
        f"| {r.mode} | (d) ms per hop, one request at a time | {fmt(s.ms_per_hop)} "
        f"| (b) {fmt(b.ms_per_hop)} ms/hop | {s.ms_per_hop / b.ms_per_hop:.1f}x |",
    ]


def runs_lines(runs: Sequence[Sequence[ModeResult]], loads: Sequence[tuple[str, str]]) -> list[str]:
    """min / median / max over repeated runs of every ratio (each run has its own raw baseline)."""
    measures: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    database: dict[tuple[str, str], list[float]] = defaultdict(list)
    for results in runs:
        for r in results:
            b, t, s = r.baseline(), r.throughput, r.sequential
            measures[(r.mode, "(c) routed subtasks/s ÷ (a) raw no-op tasks/s")].append(
                (t.subtasks_per_s, b.noop_per_s, t.subtasks_per_s / b.noop_per_s)
            )
            measures[(r.mode, "(d) ms per hop ÷ (b) raw chain ms/hop")].append(
                (s.ms_per_hop, b.ms_per_hop, s.ms_per_hop / b.ms_per_hop)
            )
            if t.counts is not None and t.hops:
                per = t.counts.per(t.hops)
                database[(r.mode, "statements per hop")].append(per["statements"])
                database[(r.mode, "round trips per hop")].append(per["round_trips"])
            if t.database_cpu_ms_per_subtask:
                database[(r.mode, "Postgres CPU ms per routed subtask")].append(t.database_cpu_ms_per_subtask)

    def spread(values: Sequence[float], digits: int) -> str:
        return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))

    lines = [
        "",
        f"## {len(runs)} runs: min / median / max",
        "",
        "Each run measures its raw baselines and the pipeline afresh, in the same process; the ratio is",
        "taken within a run. Load average (1/5/15 min) at the start → end of each run: "
        + "; ".join(f"{a} → {b}" for a, b in loads)
        + ".",
        "",
        "| mode | ratio | pipeline | raw Celery | ratio min / median / max |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (mode, label), values in measures.items():
        lines.append(
            f"| {mode} | {label} | {spread([v[0] for v in values], 1)} | {spread([v[1] for v in values], 1)} "
            f"| {spread([v[2] for v in values], 3 if '(c)' in label else 2)} |"
        )
    if database:
        lines += ["", "| mode | database work in (c) | min / median / max |", "| --- | --- | ---: |"]
        lines += [f"| {mode} | {label} | {spread(values, 2)} |" for (mode, label), values in database.items()]
    lines.append("")
    lines.append("The sections below are the last run's.")
    return lines


def database_lines(results: Sequence[ModeResult]) -> list[str]:
    """What the database did per hop in (c), and what that means for sizing a deployment."""
    rows = []
    for r in results:
        t = r.throughput
        if t.counts is None or not t.hops:
            continue
        per = t.counts.per(t.hops)
        verbs = ", ".join(f"{verb} {per[verb.lower()]:.2f}" for verb in sorted(t.counts.statements) if verb != "BEGIN")
        cpu = t.database_cpu_ms_per_subtask
        cpu_cells = "n/a | n/a"
        if cpu:
            cpu_cells = f"{cpu:.2f} | {1e3 / cpu:,.0f}"
        rows.append(
            f"| {r.mode} | {per['statements']:.2f} ({verbs}) | {per['transactions']:.2f} "
            f"| {per['round_trips']:.2f} | {cpu_cells} |"
        )
    if not rows:
        return []
    return [
        "",
        "Database work in (c), per hop, counted in every process that ran hops (`hera_router/db/counting.py`;",
        "SQLite's `BEGIN IMMEDIATE` is a round trip, not a statement), and the CPU of the Postgres backends",
        "serving the run's database per routed subtask (`/proc/<pid>/stat` of the backends in",
        "`pg_stat_activity` for that database; the shared WAL writer and checkpointer are not counted):",
        "",
        "| mode | statements per hop (by verb) | write transactions per hop | round trips per hop "
        "| Postgres CPU ms per routed subtask | routed subtasks/s one Postgres core carries |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *rows,
    ]


def breakdown_lines(results: Sequence[ModeResult]) -> list[str]:
    lines = [
        "",
        "## Per-hop cost breakdown (`--profile`, timing counters)",
        "",
        "Separate passes after the measured ones, with the pipeline's methods and `session_scope` wrapped",
        "in timers (patched in the benchmark's processes only: in-process for embedded, in fresh",
        "router/edge/cloud workers for distributed), SQL statements timed by verb, and the broker time",
        "from a publish-time message header. Times are summed over all threads and processes, so they",
        'overlap in wall time; "per hop" divides by the pass\'s hops. Rows nest: a task body contains',
        "its transactions, which contain their SQL; the timers themselves add a little to every row.",
    ]
    for r in results:
        for breakdown in r.breakdowns:
            lines += [
                "",
                f"**{r.mode}, {breakdown.label}**: {breakdown.hops} hops in {breakdown.wall_s:.2f} s "
                f"= {breakdown.wall_s * 1e3 / breakdown.hops:.1f} ms of wall time per hop.",
                "",
                "| piece | calls per hop | ms per call | ms per hop |",
                "| --- | ---: | ---: | ---: |",
            ]
            for label, (calls, seconds) in sorted(breakdown.counters.items(), key=lambda kv: -kv[1][1]):
                lines.append(
                    f"| {label} | {calls / breakdown.hops:.2f} | {seconds * 1e3 / calls:.2f} "
                    f"| {seconds * 1e3 / breakdown.hops:.2f} |"
                )
    return lines


def report(results: Sequence[ModeResult], args: argparse.Namespace, command: str, load: tuple[str, str]) -> str:
    lines = [
        "# Pipeline: routed subtasks/s and per-hop overhead vs raw Celery",
        "",
        "Zero-latency simulated models (`HERA_EDGE__BACKEND=sim`, `HERA_CLOUD__BACKEND=sim`, in-process in the",
        "workers; the simulator reports latency but does not sleep), so what is measured is queues, database",
        "and pipeline code. Raw Celery baselines run in the same run, on the same broker, with the project's",
        "app configuration (`create_app`: acks_late, prefetch 1, task events on) and no database work:",
        "(a) no-op throughput, N tasks published at once; (b) a chain of H tasks each publishing the next.",
        "Pipeline: (c) M requests in flight at once, routed subtasks/s = executed steps / wall time (a step is",
        "two hops, `routing.plan_step` + `execution.run_subtask`); (d) K requests one at a time, request wall",
        "time (submit -> last update) / its hops. Wall times end at the completion's own timestamp (Redis",
        "key, or the request row's `updated_at`), so polling adds no error; progress is polled through a",
        "separate plain engine so that watching never takes SQLite's write lock.",
        "",
        "Command (from the repo root):",
        "",
        "```bash",
        command,
        "```",
        "",
        f'Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; policy `{args.policy}` on `generate("mixed", M, {args.seed})`; '
        f"N = {args.noop} no-ops, H = {args.hops} hops, M = {args.requests}, K = {args.sequential}; "
        f"worker log level {args.loglevel}.",
        f"Machine: **a shared, noisy 2-core VM** ({platform.machine()}, Python {platform.python_version()}; "
        f"load average {load[0]} at the start, {load[1]} at the end, other jobs included); broker, database, "
        "workers and producer share the two cores. Single runs: read the numbers as orders of magnitude and "
        "the ratios as the result.",
        "",
        "## Summary",
        "",
        "| mode | measure | pipeline | raw Celery, same run | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines += ratio_rows(r)
    lines += [
        "",
        "Ratios use the raw baseline on the router worker's pool (distributed) or on the embedded worker;",
        "the details give the other distributed pool too.",
        "",
        "## Details",
        "",
        "| mode | raw worker | (a) no-op tasks/s | (b) chain ms/hop |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in results:
        lines += [f"| {r.mode} | `{b.worker}` | {fmt(b.noop_per_s)} | {fmt(b.ms_per_hop)} |" for b in r.baselines]
    lines += [
        "",
        "| mode | (c) requests | subtasks | hops | wall s | statuses | (d) requests | mean hops/request "
        "| ms/hop (total) | ms/hop (median request) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        t, s = r.throughput, r.sequential
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(t.statuses.items()))
        lines.append(
            f"| {r.mode} | {t.requests} | {t.subtasks} | {t.hops} | {t.wall_s:.2f} | {statuses} | {len(s.hops)} "
            f"| {s.mean_hops:.1f} | {fmt(s.ms_per_hop)} | {fmt(s.median_ms_per_hop)} |"
        )
    lines += database_lines(results)
    lines += ["", "Setups:", ""]
    lines += [f"- {r.mode}: {r.setup}." for r in results]
    errors = [f"- {r.mode}: {n} x {error!r}" for r in results for error, n in sorted(r.throughput.errors.items())]
    if errors:
        lines += ["", "Failed requests in (c) (the simulated SLM can fail a request; they count as run):", "", *errors]
    if any(r.breakdowns for r in results):
        lines += breakdown_lines(results)
    return "\n".join(lines) + "\n"


def keep_observations(path: Path) -> str:
    """The hand-written observations section of an earlier results file, kept across runs."""
    if not path.exists():
        return ""
    content = path.read_text()
    start = content.find(OBSERVATIONS_HEADING)
    return "\n" + content[start:].rstrip() + "\n" if start >= 0 else ""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller run (one to two minutes)")
    parser.add_argument("--modes", default="distributed,embedded", help="comma-separated: distributed, embedded")
    parser.add_argument("--requests", type=int, help="M: requests in flight for (c) (default 100, quick 30)")
    parser.add_argument("--sequential", type=int, help="K: requests one at a time for (d) (default 10, quick 4)")
    parser.add_argument("--noop", type=int, help="N: no-op tasks for (a) (default 2000, quick 500)")
    parser.add_argument("--hops", type=int, help="H: chain hops for (b) (default 500, quick 200)")
    parser.add_argument("--policy", default="random", choices=["random", "all-llm", "all-slm"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--router-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--router-concurrency", type=int, default=2)
    parser.add_argument("--exec-concurrency", type=int, default=4, help="edge and cloud worker threads")
    parser.add_argument("--embedded-concurrency", type=int, default=4)
    parser.add_argument("--loglevel", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any one measurement")
    parser.add_argument("--profile", action="store_true", help="also time the pieces of a hop (extra passes)")
    parser.add_argument("--cprofile", action="store_true", help="also cProfile the embedded mode (stdout only)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement; min/median/max")
    args = parser.parse_args(argv)
    quick = {"requests": 30, "sequential": 4, "noop": 500, "hops": 200}
    full = {"requests": 100, "sequential": 10, "noop": 2000, "hops": 500}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwind through every finally: workers, database


def loadavg() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = ".venv/bin/python benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:] if argv is None else argv)
    runners: dict[str, Callable[[argparse.Namespace], ModeResult]] = {
        "distributed": run_distributed,
        "embedded": run_embedded,
    }
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(runners))
    if unknown:
        raise SystemExit(f"unknown modes: {unknown}")
    started = time.monotonic()
    runs: list[list[ModeResult]] = []
    loads: list[tuple[str, str]] = []
    for run in range(args.runs):
        if args.runs > 1:
            log(f"run {run + 1} of {args.runs}")
        load_before = loadavg()
        runs.append([runners[mode](args) for mode in modes])
        loads.append((load_before, loadavg()))
    markdown = report(runs[-1], args, command.strip(), (loads[0][0], loads[-1][1]))
    if args.runs > 1:
        head, summary_at = markdown, markdown.find("## Summary")
        markdown = head[:summary_at] + "\n".join(runs_lines(runs, loads)[1:]) + "\n\n" + head[summary_at:]
    print(markdown)
    if args.cprofile:
        print("cProfile, every thread of an embedded system, requests one at a time:\n")
        print(run_cprofile(args))
    log(f"done in {time.monotonic() - started:.0f} s")
    if not args.no_write:
        observations = keep_observations(args.output)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown + observations)
        log(f"wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
