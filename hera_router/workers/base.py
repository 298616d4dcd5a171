"""The project's Celery ``Task`` base class.

It owns what every task needs and no task should repeat: log context (task name and id on every
log record), lifecycle metrics, the mapping of transient errors to retries with backoff, and the
delivery defaults for idempotent work (``acks_late`` + ``reject_on_worker_lost``). A task that is
not idempotent must say so at its decorator by turning those off.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from celery import Task
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from hera_router.backends.base import BackendUnavailable
from hera_router.metrics.instruments import TASK_EVENTS, TASK_RUNTIME
from hera_router.workers.outages import OutageLog

if TYPE_CHECKING:
    from billiard.einfo import ExceptionInfo

    from hera_router.db.runtime import Runtime

log = logging.getLogger(__name__)

# The task currently running in this thread/greenlet; read by TaskContextFilter.
current_task_context: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "hera_task_context", default=None
)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    BackendUnavailable,  # 5xx / 429 / connection errors from a model server
    DatabaseOperationalError,  # a dropped or timed-out database connection
    BrokerOperationalError,  # publishing the next hop failed
)

DATABASE = "database"
OUTAGES = OutageLog(log)
"""This process's outage record: one WARNING when the database goes away, one INFO when it is back."""

# Database outages (a Postgres restart or failover) get their own retry schedule, sized to ride
# out DB_OUTAGE_BUDGET_S of the database being away whatever the task's own max_retries: delays
# 1, 2, 4, 8, then DB_RETRY_CAP_S each, every delay jittered down by at most a quarter. Ten retries
# wait 79–105 s in total, so an outage of 60 s is survived even with the unluckiest jitter. The
# cap stays far below the broker's visibility timeout (HERA_VISIBILITY_TIMEOUT_S, 600 by default),
# so a retry waiting in a worker is never redelivered as a duplicate.
DB_RETRY_BASE_S = 1.0
DB_RETRY_CAP_S = 15.0
DB_MAX_RETRIES = 10
DB_OUTAGE_BUDGET_S = 60.0


def database_retry_countdown(retries: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``retries + 1`` of a task that hit a database error."""
    delay = min(DB_RETRY_CAP_S, DB_RETRY_BASE_S * 2.0 ** min(retries, 30))
    fraction: float = (rng or random).random()
    return delay * (0.75 + 0.25 * fraction)


@contextlib.contextmanager
def task_log_context(task_name: str, task_id: str) -> Iterator[None]:
    """Tag log records emitted in this block with the task's name and id."""
    token = current_task_context.set((task_name, task_id))
    try:
        yield
    finally:
        current_task_context.reset(token)


class TaskContextFilter(logging.Filter):
    """Adds ``task_name`` and ``task_id`` to every record emitted while a task runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_task_context.get()
        record.task_name, record.task_id = context if context else ("-", "-")
        return True


class HeraTask(Task):  # type: ignore[misc]  # celery ships no type information
    """Base class for every hera-router task (``@app.task(base=HeraTask)``)."""

    abstract = True

    # Delivery: at-least-once. Safe only because every task starts with a guarded state
    # transition in Postgres, so a redelivered message finds nothing to do.
    acks_late = True
    reject_on_worker_lost = True

    # Transient failures retry with exponential backoff and jitter; the cap stays far below the
    # broker's visibility timeout so a waiting retry is never redelivered as a duplicate.
    # Database errors use the longer schedule above (see retry()); tasks that do not retry at all
    # (max_retries=0: the periodic relay and reconciler, which the next tick replaces) keep that.
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 120
    retry_jitter = True
    max_retries = 5

    # State lives in Postgres; the result backend is not used.
    ignore_result = True

    @property
    def runtime(self) -> Runtime:
        """The per-process settings and database handles of the app that owns this task."""
        runtime: Runtime = self.app.hera_runtime
        return runtime

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        TASK_EVENTS.labels(self.name, "started").inc()
        started = time.perf_counter()
        try:
            with task_log_context(self.name, self.request.id or "-"):
                return super().__call__(*args, **kwargs)
        finally:
            TASK_RUNTIME.labels(self.name).observe(time.perf_counter() - started)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Celery's retry, with the database-outage schedule for database errors.

        A task's own ``max_retries`` is sized for model-server errors (execution's "final attempt"
        reads it); a database restart is a different fault and must not burn those retries in
        seconds. ``self.request.retries`` counts every retry of the message, whatever its cause.
        """
        limit = self.max_retries if max_retries is None else max_retries
        if isinstance(exc, DatabaseOperationalError) and limit and eta is None:
            countdown = database_retry_countdown(self.request.retries)
            max_retries = max(limit, DB_MAX_RETRIES)
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        TASK_EVENTS.labels(self.name, "succeeded").inc()
        OUTAGES.recovered(DATABASE)  # every task touches the database: success means it is back

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        TASK_EVENTS.labels(self.name, "retried").inc()
        if isinstance(exc, DatabaseOperationalError):
            OUTAGES.failure(DATABASE, exc)
            return
        with task_log_context(self.name, task_id):
            log.warning("task %s[%s] will retry: %s", self.name, task_id, exc)

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        TASK_EVENTS.labels(self.name, "failed").inc()
        if isinstance(exc, DatabaseOperationalError) and not self.max_retries:
            # A periodic task without retries (relay, reconciler): the next tick does its work.
            OUTAGES.failure(DATABASE, exc)
            return
        with task_log_context(self.name, task_id):
            log.error("task %s[%s] failed: %s", self.name, task_id, exc)
