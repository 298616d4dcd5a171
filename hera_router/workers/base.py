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
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from celery import Task
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from hera_router.backends.base import BackendUnavailable
from hera_router.metrics.instruments import TASK_EVENTS, TASK_RUNTIME

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

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        TASK_EVENTS.labels(self.name, "succeeded").inc()

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        TASK_EVENTS.labels(self.name, "retried").inc()
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
        with task_log_context(self.name, task_id):
            log.error("task %s[%s] failed: %s", self.name, task_id, exc)
