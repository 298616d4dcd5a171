"""The Celery application factory. Nothing here runs at import time.

Every process (api, router, edge, cloud, trainer, beat, flower) builds its app with
:func:`create_app` from the same settings, so broker options, queues and routes cannot drift
between producer and consumer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from hera_router.config import Settings
from hera_router.db.runtime import Runtime
from hera_router.pipeline.names import LONG_TRAINING_TASKS, TaskName
from hera_router.pipeline.tiers import tier_queues
from hera_router.workers import kombu_patches, queues
from hera_router.workers.base import TaskContextFilter
from hera_router.workers.publisher import celery_dispatcher, celery_held_messages, celery_queue_depth

if TYPE_CHECKING:
    from hera_router.pipeline import Pipeline

# Modules whose tasks every worker registers.
TASK_MODULES: tuple[str, ...] = (
    "hera_router.workers.tasks.routing",
    "hera_router.workers.tasks.execution",
    "hera_router.workers.tasks.maintenance",
    "hera_router.workers.tasks.training",
)


class HeraCelery(Celery):  # type: ignore[misc]  # celery ships no type information
    """A Celery app that carries the project's per-process runtime."""

    hera_runtime: Runtime
    _hera_pipeline: Pipeline | None = None
    _hera_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self.hera_runtime.settings

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline services of this process, built on first use (after a fork)."""
        with self._hera_lock:
            if self._hera_pipeline is None:
                # Deferred: a producer-only process (the API, beat) never loads the hops.
                from hera_router.estimators.loader import RegistryEstimatorSource
                from hera_router.pipeline import Pipeline, Services

                self._hera_pipeline = Pipeline(
                    Services(
                        self.hera_runtime,
                        celery_dispatcher(self),
                        estimator_source=RegistryEstimatorSource(self.hera_runtime),
                        queue_depth=celery_queue_depth(self),
                        held_messages=celery_held_messages(self),
                    )
                )
            return self._hera_pipeline


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """The one set of transport options every process uses."""
    options: dict[str, Any] = {
        # Must exceed the longest acks_late task and the longest retry countdown, or Redis
        # redelivers a message whose first copy is still running (config.py: visibility_timeout_s).
        "visibility_timeout": settings.visibility_timeout_s,
    }
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # Sweep the unacked hash for expired entries every 10 s (kombu's default is a scan every
        # 10th sweep, ~100 s): a killed worker's messages come back soon after the timeout.
        options["unacked_restore_interval"] = 10
        options["unacked_restore_throttle"] = 1
    if settings.broker_url.startswith("memory://"):
        # The in-memory transport polls once per second by default: one hop per second.
        options["polling_interval"] = settings.memory_polling_interval_s
    return options


def continual_schedule(settings: Settings) -> dict[str, Any]:
    """Beat entries of continual fine-tuning: the nightly retraining and the abandoned-run reaper."""
    from celery.schedules import crontab

    from hera_router.training.continual import cron_fields

    continual = settings.continual
    if not continual.nightly:
        return {}
    return {
        "retrain-nightly": {
            "task": TaskName.RETRAIN_NIGHTLY,
            "schedule": crontab(**cron_fields(continual.schedule)),
            "kwargs": {"trigger": "beat"},
        },
        "reap-training-runs": {
            "task": TaskName.REAP_TRAINING_RUNS,
            "schedule": continual.reap_interval_s,
            "options": {"expires": continual.reap_interval_s},
        },
    }


def create_app(settings: Settings, *, include: Sequence[str] = TASK_MODULES) -> HeraCelery:
    # Before any connection exists: without it a Redis restart kills workers (kombu_patches.py).
    kombu_patches.install()
    app = HeraCelery("hera_router", set_as_current=False)
    app.hera_runtime = Runtime(settings)
    names = settings.queues
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        # A worker that cannot reach the broker after this many attempts exits non-zero and its
        # supervisor restarts it (ops/systemd, docker/compose.yaml), instead of hanging forever.
        broker_connection_max_retries=settings.broker_connection_max_retries,
        # No result backend: job state lives in the database, results would only expire there.
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_queues=queues.declarations(names, tier_queues(settings)),
        task_default_queue=queues.physical_name(queues.Queue.MAINTENANCE, names),
        task_routes=queues.task_routes(names, tier_queues(settings)),
        task_create_missing_queues=False,
        # Delivery defaults for idempotent tasks; non-idempotent tasks opt out at the decorator.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # On for pools that can kill a job; `hera-router worker` turns it off for threads
        # (workers/supervision.py), which cannot and logged a traceback per task instead.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=10.0,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        # Events for Flower: workers send task events, producers send task-sent.
        worker_send_task_events=True,
        task_send_sent_event=True,
        include=list(include),
        beat_schedule={
            "relay-outbox": {
                "task": TaskName.RELAY_OUTBOX,
                "schedule": settings.relay_interval_s,
                "options": {"expires": settings.relay_interval_s * 5},
            },
            "reconcile": {
                "task": TaskName.RECONCILE,
                "schedule": settings.reconcile_interval_s,
                "options": {"expires": settings.reconcile_interval_s},
            },
            **continual_schedule(settings),
        },
        # Training tasks run for minutes to hours (they ack early, so the visibility timeout does
        # not bound them); the global limits are sized for routing and execution hops.
        task_annotations={
            name: {
                "time_limit": settings.training_time_limit_s,
                "soft_time_limit": max(1, settings.training_time_limit_s - 60),
            }
            for name in LONG_TRAINING_TASKS
        },
    )
    _connect_signals(app)
    return app


def _connect_signals(app: HeraCelery) -> None:
    def dispose_inherited_engine(**_: Any) -> None:
        app.hera_runtime.after_fork()

    def stop_heartbeat(**_: Any) -> None:
        # A clean exit removes this process's heartbeat, so its steps need not wait out the timeout.
        if app._hera_pipeline is not None:
            app._hera_pipeline.services.liveness.stop()

    def add_task_context(logger: logging.Logger | None = None, **_: Any) -> None:
        target = logger or logging.getLogger()
        for handler in target.handlers:
            handler.addFilter(TaskContextFilter())

    # weak=False: the closures would otherwise be collected as soon as this function returns.
    signals.worker_process_init.connect(dispose_inherited_engine, weak=False)
    signals.worker_process_shutdown.connect(stop_heartbeat, weak=False)
    signals.worker_shutdown.connect(stop_heartbeat, weak=False)
    signals.after_setup_logger.connect(add_task_context, weak=False)
    signals.after_setup_task_logger.connect(add_task_context, weak=False)
