"""Embedded mode: the whole system in one process.

SQLite (or any configured database), the ``memory://`` broker, one real in-process Celery worker
consuming every queue, and a maintenance thread doing beat's job (outbox relay, reconciler). The
tasks, the outbox and the recovery paths are the same code the distributed deployment runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hera_router.config import Settings
from hera_router.db.migrate import upgrade
from hera_router.pipeline.queues import Queue
from hera_router.workers.app import HeraCelery, create_app
from hera_router.workers.embedded import embedded_worker
from hera_router.workers.outages import one_line

log = logging.getLogger(__name__)


@dataclass
class EmbeddedSystem:
    app: HeraCelery
    settings: Settings


class PeriodicJob:
    """One of the maintenance thread's periodic jobs, run once per tick.

    Its failures are operational messages, not crashes: the first failure of a streak is one
    WARNING line naming the job, the error and that the next tick retries; repeats are only
    counted, and the first success afterwards is one INFO line. The traceback stays at DEBUG
    (``HERA_LOG_LEVEL=DEBUG``), as with the tasks' database outages (``workers/outages.py``).
    """

    def __init__(self, name: str, work: Callable[[], object], retry_s: float) -> None:
        self.name = name
        self.work = work
        self.retry_s = retry_s
        self.failures = 0

    def __call__(self) -> None:
        try:
            self.work()
        except Exception as exc:  # the loop must live on; the next tick retries
            self._failed(exc)
            return
        if self.failures:
            log.info("embedded maintenance: the %s works again after %d failed ticks", self.name, self.failures)
            self.failures = 0

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.debug("embedded maintenance: the %s failed", self.name, exc_info=True)
        if self.failures == 1:
            log.warning(
                "embedded maintenance: the %s failed, retrying every %g s: %s", self.name, self.retry_s, one_line(exc)
            )


class _Maintenance(threading.Thread):
    """Beat's periodic work for a single process: relay the outbox, reconcile stalled requests."""

    def __init__(self, app: HeraCelery) -> None:
        super().__init__(name="hera-maintenance", daemon=True)
        self.app = app
        self.stopping = threading.Event()
        settings = app.settings
        self.relay = PeriodicJob("outbox relay", app.pipeline.relay, settings.relay_interval_s)
        self.reconcile = PeriodicJob("reconciler", app.pipeline.reconcile, settings.reconcile_interval_s)

    def run(self) -> None:
        settings = self.app.settings
        since_reconcile = 0.0
        while not self.stopping.wait(settings.relay_interval_s):
            self.relay()
            since_reconcile += settings.relay_interval_s
            if since_reconcile >= settings.reconcile_interval_s:
                since_reconcile = 0.0
                self.reconcile()


def without_shadow(settings: Settings) -> Settings:
    """``settings`` with shadow execution off (``HERA_CONTINUAL__SHADOW_RATE`` = 0).

    Embedded mode never shadows: its one worker serves the live hops, so shadow trees would take
    its threads from users' requests (shadow work must never delay an answer), and whatever is
    still queued on the in-memory broker when ``run`` ends is lost. Continual fine-tuning's
    labels come from a distributed deployment's training worker (docs/continual.md).
    """
    if settings.continual.shadow_rate <= 0:
        return settings
    log.info(
        "embedded mode: shadow execution is off (HERA_CONTINUAL__SHADOW_RATE=%g ignored; it needs a "
        "training worker, see docs/continual.md)",
        settings.continual.shadow_rate,
    )
    continual = settings.continual.model_copy(update={"shadow_rate": 0.0})
    return settings.model_copy(update={"continual": continual})


@contextmanager
def embedded_system(settings: Settings, *, concurrency: int = 4, migrate: bool = True) -> Iterator[EmbeddedSystem]:
    """Start the system in this process; stop it when the block exits (no shadow execution:
    :func:`without_shadow`). The model backends are built before the worker starts consuming, so
    a model that is slow to load delays the start, not the first hops."""
    settings = without_shadow(settings)
    if migrate:
        upgrade(settings.database_url)
    app = create_app(settings)
    app.pipeline.services.build_backends()
    maintenance = _Maintenance(app)
    queues = (Queue.ROUTER, Queue.EDGE, Queue.CLOUD, Queue.MAINTENANCE)
    with embedded_worker(app, queues, concurrency=concurrency):
        maintenance.start()
        try:
            yield EmbeddedSystem(app=app, settings=settings)
        finally:
            maintenance.stopping.set()
            maintenance.join(timeout=30)
    app.hera_runtime.close()
