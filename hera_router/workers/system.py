"""Embedded mode: the whole system in one process.

SQLite (or any configured database), the ``memory://`` broker, one real in-process Celery worker
consuming every queue, and a maintenance thread doing beat's job (outbox relay, reconciler). The
tasks, the outbox and the recovery paths are the same code the distributed deployment runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hera_router.config import Settings
from hera_router.db.migrate import upgrade
from hera_router.pipeline.queues import Queue
from hera_router.workers.app import HeraCelery, create_app
from hera_router.workers.embedded import embedded_worker

log = logging.getLogger(__name__)


@dataclass
class EmbeddedSystem:
    app: HeraCelery
    settings: Settings


class _Maintenance(threading.Thread):
    """Beat's periodic work for a single process: relay the outbox, reconcile stalled requests."""

    def __init__(self, app: HeraCelery) -> None:
        super().__init__(name="hera-maintenance", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        settings = self.app.settings
        since_reconcile = 0.0
        while not self.stopping.wait(settings.relay_interval_s):
            try:
                self.app.pipeline.relay()
                since_reconcile += settings.relay_interval_s
                if since_reconcile >= settings.reconcile_interval_s:
                    since_reconcile = 0.0
                    self.app.pipeline.reconcile()
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("embedded maintenance tick failed")


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
    :func:`without_shadow`)."""
    settings = without_shadow(settings)
    if migrate:
        upgrade(settings.database_url)
    app = create_app(settings)
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
