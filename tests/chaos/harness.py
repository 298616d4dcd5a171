"""The chaos harness: a whole distributed deployment on private servers, faults, and the checks.

One :class:`Deployment` per scenario: its own database (on the suite's private Postgres), its
own broker (a private Redis, or a fresh RabbitMQ vhost), its own queue names, and every process
kind as a separate ``hera-router`` process — router (prefork), edge (prefork), cloud (threads),
maintenance (threads) and beat — against two loopback model servers (hera_router/devserver, in
this process so their call counters can be read) with latency. The harness plays the supervisor:
a worker whose main process it SIGKILLs is started again at once, as compose/systemd would.

What a scenario measures, all from Postgres and the model servers' counters:

- every request finished (terminal status);
- duplicate subtask rows (same request, step, part) and decisions — 0 by construction;
- double charges: a step with more successful calls than it should have, or a request whose
  stored cost differs from the sum of its calls;
- calls served by the model servers (2xx answers) against successful calls on record;
- time to recover: for every fault, the time from the fault clearing until every request that
  was unfinished at that moment has progressed (a new succeeded step, a new call, a new step, or
  a terminal status);
- the batch's wall time, against the fault-free scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from hera_router.config import QueueNames
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES
from hera_router.db.migrate import upgrade
from hera_router.devserver.faults import Fault, FaultConfig, FaultInjector
from hera_router.simulator.generate import generate
from hera_router.workers import HeraCelery, create_app
from hera_router.workers.publisher import celery_dispatcher
from tests.integration.pipeline.distributed import settings_from, sim_model_servers
from tests.integration.pipeline.helpers import submit
from tests.integration.services import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {status.value for status in TERMINAL_REQUEST_STATUSES}
UNRECOVERABLE = "Unrecoverable error"


class CountingFaultInjector(FaultInjector):
    """A FaultInjector that also counts the requests it failed, so served = received - failed."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.faulted = 0
        super().__init__(config)

    def next_fault(self) -> Fault | None:
        fault = super().next_fault()
        if fault is not None:
            with self._lock:
                self.faulted += 1
        return fault

    @property
    def served(self) -> int:
        with self._lock:
            return self.generation_requests - self.faulted


# --- processes -----------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (prefork pool processes), from /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Process:
    """One ``hera-router`` process of the deployment (a worker or beat), restartable."""

    kind: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} at {time.time():.3f}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_main(self) -> None:
        """SIGKILL the main process, then its orphaned pool children (a container/OOM kill)."""
        assert self.popen is not None
        children = children_of(self.pid)
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def kill_child(self) -> bool:
        """SIGKILL one pool child (prefork); False if there is none."""
        children = children_of(self.pid)
        if not children:
            return False
        os.kill(children[0], signal.SIGKILL)
        return True

    def stop(self) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            children = children_of(self.pid)
            self.popen.terminate()
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


WORKERS: dict[str, tuple[str, str, int]] = {
    # kind: (logical queue, pool, concurrency) — the deployment, scaled to two cores.
    "router": ("router", "prefork", 2),
    "edge": ("edge", "prefork", 3),
    "cloud": ("cloud", "threads", 8),
    "maintenance": ("maintenance", "threads", 2),
}


# --- the deployment ------------------------------------------------------------------------


@dataclass
class Deployment:
    name: str
    database_url: str
    broker_url: str
    log_dir: Path
    edge_faults: CountingFaultInjector
    cloud_faults: CountingFaultInjector
    env: dict[str, str]
    app: HeraCelery
    engine: Engine
    processes: dict[str, Process] = field(default_factory=dict)

    def start_processes(self) -> None:
        hera = [sys.executable, "-m", "hera_router.cli"]
        for kind, (queue, pool, concurrency) in WORKERS.items():
            argv = [
                *hera,
                "worker",
                "-Q",
                queue,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-n",
                f"{kind}-{self.name}@localhost",
            ]
            self.processes[kind] = Process(kind, argv, self.env, self.log_dir / f"{kind}.log")
        self.processes["beat"] = Process("beat", [*hera, "beat"], self.env, self.log_dir / "beat.log")
        for process in self.processes.values():
            process.start()

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        for kind in WORKERS:
            process = self.processes[kind]
            while "ready." not in process.log():
                if not process.alive() or time.monotonic() > deadline:
                    raise AssertionError(f"{kind} did not start:\n{process.log()[-3000:]}")
                time.sleep(0.3)

    def restart(self, kind: str) -> None:
        """What the supervisor does when a process died (compose restart / systemd Restart=always)."""
        self.processes[kind].start()

    def stop(self) -> dict[str, int | None]:
        return {kind: process.stop() for kind, process in self.processes.items()}

    def submit(self, requests: int, seed: int) -> list[uuid.UUID]:
        tasks = generate("mixed", requests, seed)
        return submit(self.app.hera_runtime.sessions, celery_dispatcher(self.app), tasks, policy="random")

    def served_calls(self) -> int:
        return self.edge_faults.served + self.cloud_faults.served

    def progress(self) -> dict[str, tuple[str, int, int, int]]:
        """Per request: (status, current step, succeeded subtasks, calls on record)."""
        query = text(
            "SELECT r.id::text, r.status, r.current_seq,"
            " (SELECT count(*) FROM subtasks s WHERE s.request_id = r.id AND s.status = 'succeeded'),"
            " (SELECT count(*) FROM model_calls c WHERE c.request_id = r.id)"
            " FROM requests r"
        )
        with self.engine.connect() as conn:
            return {row[0]: (row[1], int(row[2]), int(row[3]), int(row[4])) for row in conn.execute(query)}

    def unfinished(self) -> int:
        return sum(1 for marker in self.progress().values() if marker[0] not in TERMINAL)

    def worker_logs(self) -> str:
        return "\n".join(f"--- {kind}\n{p.log()[-2500:]}" for kind, p in self.processes.items())


@contextmanager
def deployment(
    name: str,
    postgres: PostgresServer,
    log_dir: Path,
    *,
    broker: str = "redis",
    redis: RedisServer | None = None,
    edge_latency_s: float = 0.3,
    cloud_latency_s: float = 0.6,
    seed: int = 7,
    overrides: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """A fresh database and broker namespace, the model servers, every process kind started."""
    log_dir.mkdir(parents=True, exist_ok=True)
    database = f"chaos_{name.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    database_url = make_url(postgres.url).set(database=database).render_as_string(hide_password=False)
    upgrade(database_url)
    suffix = uuid.uuid4().hex[:6]
    queues = QueueNames(**{field_name: f"chaos-{suffix}-{field_name}" for field_name in QueueNames.model_fields})
    edge_faults = CountingFaultInjector(FaultConfig(latency_s=edge_latency_s, seed=seed))
    cloud_faults = CountingFaultInjector(FaultConfig(latency_s=cloud_latency_s, seed=seed + 1))
    with ExitStack() as stack:
        if broker == "redis":
            assert redis is not None
            broker_url = redis.url
        else:
            broker_url = stack.enter_context(rabbitmq_vhost(f"hera-chaos-{suffix}"))
        model_servers = stack.enter_context(
            sim_model_servers(seed=seed, edge_faults=edge_faults, cloud_faults=cloud_faults)
        )
        settings_env: dict[str, str] = {
            "HERA_MODE": "distributed",
            "HERA_BROKER_URL": broker_url,
            "HERA_REDIS_URL": redis.url if redis is not None else "redis://127.0.0.1:1/0",
            "HERA_DATABASE_URL": database_url,
            "HERA_DATA_DIR": str(log_dir),
            "HERA_SIMULATOR__SEED": str(seed),
            "HERA_CONTINUAL__SHADOW_RATE": "0",
            "HERA_CONTINUAL__NIGHTLY": "false",
            **model_servers,
            "HERA_LOG_LEVEL": "INFO",
            "HERA_OPS__WORKER_METRICS_PORT": "0",
            **{f"HERA_QUEUES__{key.upper()}": value for key, value in queues.model_dump().items()},
            **(overrides or {}),
        }
        env = {**os.environ, **settings_env, "PYTHONPATH": str(REPO)}
        settings = settings_from(settings_env)
        app = create_app(settings)
        engine = create_engine(database_url, pool_pre_ping=True)
        system = Deployment(
            name=name,
            database_url=database_url,
            broker_url=broker_url,
            log_dir=log_dir,
            edge_faults=edge_faults,
            cloud_faults=cloud_faults,
            env=env,
            app=app,
            engine=engine,
        )
        try:
            system.start_processes()
            system.wait_ready()
            yield system
        finally:
            system.stop()
            app.hera_runtime.close()
            engine.dispose()


@contextmanager
def rabbitmq_vhost(vhost: str) -> Iterator[str]:
    """A fresh vhost on the machine's RabbitMQ (guest/guest), deleted afterwards."""
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(
            [*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], check=False, capture_output=True, timeout=60)


# --- recovery tracking -----------------------------------------------------------------------


@dataclass
class FaultEvent:
    label: str
    cleared_at: float
    pending: dict[str, tuple[str, int, int, int]]
    recovered_at: float | None = None

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_at is None else max(0.0, self.recovered_at - self.cleared_at)


class RecoveryTracker:
    """Polls request progress twice a second; resolves each fault event when every request that
    was unfinished when the fault cleared has moved (or finished)."""

    def __init__(self, system: Deployment, interval_s: float = 0.5) -> None:
        self.system = system
        self.interval_s = interval_s
        self.events: list[FaultEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-tracker", daemon=True)
        self.last_progress: dict[str, tuple[str, int, int, int]] = {}

    def __enter__(self) -> RecoveryTracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def cleared(self, label: str) -> FaultEvent:
        """The fault ``label`` has just cleared: start its recovery clock."""
        now = time.monotonic()
        progress = self._read() or self.last_progress
        pending = {key: marker for key, marker in progress.items() if marker[0] not in TERMINAL}
        event = FaultEvent(label, now, pending, recovered_at=now if not pending else None)
        with self._lock:
            self.events.append(event)
        return event

    def _read(self) -> dict[str, tuple[str, int, int, int]] | None:
        try:
            return self.system.progress()
        except OperationalError:  # Postgres is the fault
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            progress = self._read()
            if progress is None:
                continue
            self.last_progress = progress
            now = time.monotonic()
            with self._lock:
                for event in self.events:
                    if event.recovered_at is not None:
                        continue
                    for key in [k for k, marker in event.pending.items() if progress.get(k) != marker]:
                        del event.pending[key]
                    if not event.pending:
                        event.recovered_at = now


# --- checks ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a scenario measured; ``checks`` holds the invariants, ``targets`` the recovery goals."""

    scenario: str
    broker: str
    requests: int
    wall_s: float
    statuses: dict[str, int]
    duplicate_subtasks: int
    duplicate_decisions: int
    double_charged_steps: int
    cost_mismatches: int
    stored_cost_usd: float
    calls_cost_usd: float
    calls_served: int
    calls_recorded_ok: int
    calls_recorded: int
    recoveries: list[tuple[str, float | None]]
    workers_alive: dict[str, bool]
    unrecoverable_errors: int
    restarts: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def unfinished(self) -> int:
        return sum(count for status, count in self.statuses.items() if status not in TERMINAL)

    @property
    def max_recovery_s(self) -> float | None:
        values = [value for _, value in self.recoveries]
        if any(value is None for value in values):
            return None  # some event never recovered
        return max((value for value in values if value is not None), default=0.0)

    @property
    def unrecorded_calls(self) -> int:
        """Calls a model server answered that have no row (a ``started`` row whose worker died
        before its request reached the server makes the record exceed what was served)."""
        return max(0, self.calls_served - self.calls_recorded_ok)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.update(
            unfinished=self.unfinished, max_recovery_s=self.max_recovery_s, unrecorded_calls=self.unrecorded_calls
        )
        return data


def measure(
    system: Deployment, scenario: str, broker: str, requests: int, wall_s: float, tracker: RecoveryTracker
) -> Outcome:
    queries = {
        "duplicate_subtasks": (
            "SELECT count(*) FROM (SELECT 1 FROM subtasks GROUP BY request_id, seq, part HAVING count(*) > 1) d"
        ),
        "duplicate_decisions": (
            "SELECT count(*) FROM (SELECT 1 FROM decisions GROUP BY request_id, seq HAVING count(*) > 1) d"
        ),
        # A step has one successful call, two when the verify stage re-ran it on the LLM.
        "double_charged_steps": (
            "SELECT count(*) FROM (SELECT s.id FROM subtasks s JOIN model_calls c ON c.subtask_id = s.id"
            " WHERE c.status = 'ok' GROUP BY s.id, s.branch"
            " HAVING count(*) > CASE WHEN s.branch = 'verify' THEN 2 ELSE 1 END) d"
        ),
        "cost_mismatches": (
            "SELECT count(*) FROM requests r WHERE abs(r.cost_usd - coalesce("
            "(SELECT sum(c.cost_usd) FROM model_calls c WHERE c.request_id = r.id), 0)) > 1e-9"
        ),
        "stored_cost_usd": "SELECT coalesce(sum(cost_usd), 0) FROM requests",
        "calls_cost_usd": "SELECT coalesce(sum(cost_usd), 0) FROM model_calls",
        # Every call is on record before it is made: ok, discarded (another attempt's result was
        # kept) and started (its worker died during the call: outcome unknown, maybe billed).
        "calls_recorded_ok": "SELECT count(*) FROM model_calls WHERE status IN ('ok', 'discarded', 'started')",
        "calls_recorded": "SELECT count(*) FROM model_calls",
    }
    with system.engine.connect() as conn:
        values = {name: conn.execute(text(sql)).scalar_one() for name, sql in queries.items()}
        statuses = {
            row[0]: int(row[1]) for row in conn.execute(text("SELECT status, count(*) FROM requests GROUP BY status"))
        }
    logs = {kind: process.log() for kind, process in system.processes.items()}
    return Outcome(
        scenario=scenario,
        broker=broker,
        requests=requests,
        wall_s=wall_s,
        statuses=statuses,
        duplicate_subtasks=int(values["duplicate_subtasks"]),
        duplicate_decisions=int(values["duplicate_decisions"]),
        double_charged_steps=int(values["double_charged_steps"]),
        cost_mismatches=int(values["cost_mismatches"]),
        stored_cost_usd=float(values["stored_cost_usd"]),
        calls_cost_usd=float(values["calls_cost_usd"]),
        calls_served=system.served_calls(),
        calls_recorded_ok=int(values["calls_recorded_ok"]),
        calls_recorded=int(values["calls_recorded"]),
        recoveries=[(event.label, event.recovery_s) for event in tracker.events],
        workers_alive={kind: process.alive() for kind, process in system.processes.items()},
        unrecoverable_errors=sum(log.count(UNRECOVERABLE) for log in logs.values()),
        restarts={kind: process.starts - 1 for kind, process in system.processes.items()},
    )


def run_scenario(
    system: Deployment,
    scenario: str,
    broker: str,
    requests: int,
    faults: Callable[[Deployment, RecoveryTracker], None],
    *,
    seed: int = 7,
    timeout_s: float = 900,
) -> Outcome:
    """Submit ``requests``, run ``faults`` alongside (it reports each fault's clearing to the
    tracker), wait until every request finished and the faults are over (or the timeout), measure.
    The wall time is the time until the last request finished."""
    errors: list[BaseException] = []

    def inject() -> None:
        try:
            faults(system, tracker)
        except BaseException as exc:
            errors.append(exc)

    with RecoveryTracker(system) as tracker:
        started = time.monotonic()
        system.submit(requests, seed)
        injector = threading.Thread(target=inject, name="chaos-faults", daemon=True)
        injector.start()
        finished_at: float | None = None
        deadline = started + timeout_s
        while time.monotonic() < deadline and (finished_at is None or injector.is_alive()):
            try:
                if finished_at is None and system.unfinished() == 0:
                    finished_at = time.monotonic()
            except OperationalError:
                pass
            time.sleep(0.5)
        injector.join(timeout=300)
        if errors:
            raise errors[0]
        time.sleep(1.0)  # let the tracker see the final state
    wall_s = (finished_at or time.monotonic()) - started
    outcome = measure(system, scenario, broker, requests, wall_s, tracker)
    if finished_at is None:
        outcome.notes.append(f"{outcome.unfinished} requests unfinished after {timeout_s:.0f} s")
    return outcome


def sleep_until(started: float, offset_s: float) -> None:
    time.sleep(max(0.0, started + offset_s - time.monotonic()))


def write_json(outcomes: Sequence[Outcome], path: Path) -> None:
    path.write_text(json.dumps([outcome.as_dict() for outcome in outcomes], indent=2, default=str))


def load_json(path: Path) -> list[Outcome]:
    """Outcomes written by :func:`write_json` (to re-render a report without re-running)."""
    names = set(Outcome.__dataclass_fields__)
    outcomes = []
    for data in json.loads(path.read_text()):
        values = {key: value for key, value in data.items() if key in names}
        values["recoveries"] = [tuple(item) for item in values["recoveries"]]
        outcomes.append(Outcome(**values))
    return outcomes
