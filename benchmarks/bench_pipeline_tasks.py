"""Raw-Celery baseline tasks for ``benchmarks/bench_pipeline.py``: a no-op and a self-publishing chain.

They do no database work and call no model: what they cost is what Celery, kombu and the broker
cost per task on this machine, with the project's own app configuration (``create_app``: acks_late,
prefetch 1, task events on). Their names start with ``maintenance.`` so the static routes send
them to the maintenance queue; the benchmark passes an explicit ``queue`` when it wants another
one (a second baseline worker with another pool), and the chain republishes to the queue it was
sent to.

Completion is recorded where the producer can read it with no polling error:

- ``sink`` is a ``redis://`` URL (distributed mode): ``INCR`` a counter; the task that brings it to
  ``total`` writes its wall-clock time under ``<key>:done``.
- ``sink`` is ``"local"`` (embedded mode, worker threads in the producer's process): the same in a
  module-level dict guarded by a lock, with an event per key.

Load into a worker with ``-I benchmarks.bench_pipeline_tasks`` and ``PYTHONPATH`` at the repo root.

With ``HERA_BENCH_COUNTS=<run id>`` in its environment, a worker that loads this module counts the
SQL statements, write transactions and round trips of every process that runs tasks
(``hera_router.db.counting.StatementCounter`` on the process's engine) and writes the running
totals to Redis every 0.2 s under ``bench:<run id>:counts:<pid>``.

With ``HERA_BENCH_TIMERS=<run id>`` in its environment, a worker that loads this module also times
the pieces of every hop it runs (``bench_pipeline.HopTimer``, installed in each process that runs
tasks) and writes the running totals to Redis every 0.2 s under ``bench:<run id>:timers:<pid>``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import redis
from celery import shared_task, signals

NOOP_TASK = "maintenance.bench_noop"
CHAIN_TASK = "maintenance.bench_chain"
LOCAL_SINK = "local"
TIMERS_ENV = "HERA_BENCH_TIMERS"
COUNTS_ENV = "HERA_BENCH_COUNTS"
SENT_AT_HEADER = "bench_sent_at"

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()

# sink == "local": key -> [count, done_at]; key -> Event set when done.
_local_counts: dict[str, list[float]] = {}
_local_done: dict[str, threading.Event] = {}
_local_lock = threading.Lock()


def _client(url: str) -> redis.Redis:
    # One client per process (created after a prefork child started, never inherited).
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url)
        return _clients[url]


def local_event(key: str) -> threading.Event:
    """The event set when ``key`` reaches its total (sink ``"local"``)."""
    with _local_lock:
        return _local_done.setdefault(key, threading.Event())


def local_done_at(key: str) -> float | None:
    with _local_lock:
        entry = _local_counts.get(key)
        return entry[1] if entry and entry[1] else None


def local_count(key: str) -> int:
    with _local_lock:
        entry = _local_counts.get(key)
        return int(entry[0]) if entry else 0


def record(sink: str, key: str, total: int) -> None:
    """Count one completion of ``key``; the completion that reaches ``total`` stamps the time."""
    if sink == LOCAL_SINK:
        with _local_lock:
            entry = _local_counts.setdefault(key, [0, 0.0])
            entry[0] += 1
            if entry[0] == total:
                entry[1] = time.time()
                _local_done.setdefault(key, threading.Event()).set()
        return
    client = _client(sink)
    if int(client.incr(key)) == total:
        client.set(f"{key}:done", repr(time.time()))


@shared_task(name=NOOP_TASK, bind=True, ignore_result=True)
def bench_noop(self: Any, sink: str, key: str, total: int) -> None:
    """Do nothing but count the completion."""
    record(sink, key, total)


@shared_task(name=CHAIN_TASK, bind=True, ignore_result=True)
def bench_chain(self: Any, sink: str, key: str, remaining: int, queue: str | None = None) -> None:
    """Publish the next hop (as the pipeline's tasks do, with ``app.send_task``) until
    ``remaining`` runs out; the last hop records the completion."""
    if remaining <= 1:
        record(sink, key, 1)
        return
    options: dict[str, Any] = {"queue": queue} if queue else {}
    kwargs = {"sink": sink, "key": key, "remaining": remaining - 1, "queue": queue}
    self.app.send_task(CHAIN_TASK, kwargs=kwargs, **options)


# -- optional hop timers in a worker process (HERA_BENCH_TIMERS) -----------------------------------


def stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` handler: the wall-clock publish time travels in the message, so the
    consuming process (any process on this machine) can measure the time in the broker."""
    if headers is not None:
        headers[SENT_AT_HEADER] = time.time()


def timers_key(run: str, pid: int) -> str:
    return f"bench:{run}:timers:{pid}"


_timers_pid: int | None = None


def _start_timers(sender: Any = None, **_: Any) -> None:
    """Install the hop timer in this process and flush its totals to Redis periodically.

    Runs in each prefork child (``worker_process_init``) and in a threads-pool worker's main
    process (``worker_ready``); a prefork parent runs no tasks and is skipped, so a child it forks
    later does not inherit wrapped classes.
    """
    global _timers_pid  # noqa: PLW0603  # once per process
    run = os.environ.get(TIMERS_ENV)
    pool = getattr(sender, "pool", None)
    if not run or _timers_pid == os.getpid() or (pool is not None and "prefork" in type(pool).__module__):
        return
    _timers_pid = os.getpid()
    from benchmarks.bench_pipeline import HopTimer

    timer = HopTimer()
    timer.install()
    client = redis.Redis.from_url(os.environ.get("HERA_BROKER_URL", "redis://127.0.0.1:6379/0"))
    key = timers_key(run, os.getpid())

    def flush() -> None:
        while True:
            time.sleep(0.2)
            client.set(key, json.dumps(timer.snapshot()), ex=3600)

    threading.Thread(target=flush, name="bench-timers", daemon=True).start()


if os.environ.get(TIMERS_ENV):
    signals.worker_process_init.connect(_start_timers, weak=False)
    signals.worker_ready.connect(_start_timers, weak=False)


# -- optional statement counts in a worker process (HERA_BENCH_COUNTS) -----------------------------


def counts_key(run: str, pid: int) -> str:
    return f"bench:{run}:counts:{pid}"


_counts_pid: int | None = None


def _start_counts(sender: Any = None, **_: Any) -> None:
    """Count this process's statements and round trips; flush the totals to Redis periodically
    (the same processes as :func:`_start_timers`)."""
    global _counts_pid  # noqa: PLW0603  # once per process
    run = os.environ.get(COUNTS_ENV)
    pool = getattr(sender, "pool", None)
    if not run or _counts_pid == os.getpid() or (pool is not None and "prefork" in type(pool).__module__):
        return
    _counts_pid = os.getpid()
    from celery import current_app

    from hera_router.db.counting import StatementCounter

    counter = StatementCounter(current_app.hera_runtime.engine)  # type: ignore[attr-defined]
    counter.install()
    client = redis.Redis.from_url(os.environ.get("HERA_BROKER_URL", "redis://127.0.0.1:6379/0"))
    key = counts_key(run, os.getpid())

    def flush() -> None:
        while True:
            time.sleep(0.2)
            counts = counter.snapshot()
            totals = {
                "statements": dict(counts.statements),
                "transactions": counts.transactions,
                "round_trips": counts.round_trips,
            }
            client.set(key, json.dumps(totals), ex=3600)

    threading.Thread(target=flush, name="bench-counts", daemon=True).start()


if os.environ.get(COUNTS_ENV):
    signals.worker_process_init.connect(_start_counts, weak=False)
    signals.worker_ready.connect(_start_counts, weak=False)
