"""Real Celery workers inside the current process, for embedded mode and tests.

``hera-router run`` uses these on the ``memory://`` transport: one thread-pool worker for all queues,
consuming exactly as a separate ``celery worker`` process would (same app, same routes, acks and
retries), with no ``task_always_eager`` shortcut anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from celery.app import trace
from celery.worker import WorkController
from celery.worker import state as worker_state

from hera_router.pipeline.queues import Queue, physical_name
from hera_router.pipeline.tiers import tier_queues
from hera_router.workers.app import HeraCelery


class _ReadyWorkController(WorkController):  # type: ignore[misc]  # celery ships no types
    """A WorkController that signals when its consumer is ready to take messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


class EmbeddedWorkerError(RuntimeError):
    """The embedded worker did not start or stop in time."""


@contextmanager
def embedded_worker(
    app: HeraCelery,
    queues: Iterable[Queue] = tuple(Queue),
    *,
    concurrency: int = 4,
    start_timeout_s: float = 30.0,
    stop_timeout_s: float = 30.0,
    loglevel: str = "WARNING",
) -> Iterator[WorkController]:
    """Run one thread-pool worker consuming ``queues`` until the block exits.

    One worker serves every queue because Celery's queue selection is app-wide state: two
    WorkControllers of one app in one process would both end up consuming the last selection.
    Stopping is process-wide too (the worker loop watches a module-level flag), so only one
    embedded worker may run in a process at a time.
    """
    names = [physical_name(queue, app.settings.queues) for queue in queues]
    if Queue.EDGE in queues or Queue.CLOUD in queues:
        # Steps on model tiers (HERA_MODELS) run from the tiers' own queues: serve those too.
        names = list(dict.fromkeys([*names, *tier_queues(app.settings).values()]))
    worker = _ReadyWorkController(
        app=app,
        hostname="embedded@localhost",
        queues=names,
        pool="threads",
        concurrency=concurrency,
        loglevel=loglevel,
        ready_callback=None,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    # What the `celery worker` command does before it starts: the pool's fast tracer reads the
    # registry from module state, and shared tasks resolve the app through the current/default
    # app. Without this, tasks would run against Celery's implicit default app.
    trace.setup_worker_optimizations(app, worker.hostname)
    app.set_default()

    def run() -> None:
        app.set_current()
        worker.start()

    thread = threading.Thread(target=run, name="hera-embedded-worker", daemon=True)
    thread.start()
    try:
        if not worker.ready.wait(start_timeout_s):
            raise EmbeddedWorkerError(
                f"the embedded worker did not start within {start_timeout_s:.0f} s; "
                f"check that the broker at {app.conf.broker_url} is reachable"
            )
        yield worker
    finally:
        worker_state.should_terminate = 0
        try:
            thread.join(stop_timeout_s)
            if thread.is_alive():
                raise EmbeddedWorkerError(f"the embedded worker did not stop within {stop_timeout_s:.0f} s")
        finally:
            worker_state.should_terminate = None
            trace.reset_worker_optimizations(app)
