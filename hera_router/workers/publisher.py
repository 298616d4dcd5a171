"""What the pipeline needs from the broker, on a Celery app: the outbox's publish callable
(``send_task`` with the broker's errors mapped) and the depth of a queue (for the reconciler)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerOperationalError

from hera_router.pipeline.outbox import Dispatcher, Publish, PublishError
from hera_router.pipeline.queues import Queue, physical_name
from hera_router.pipeline.services import QueueDepth


def celery_publish(app: Celery) -> Publish:
    def publish(task_name: str, kwargs: Mapping[str, Any], task_id: str) -> None:
        try:
            app.send_task(task_name, kwargs=dict(kwargs), task_id=task_id)
        except BrokerOperationalError as exc:
            raise PublishError(str(exc)) from exc

    return publish


def celery_dispatcher(app: Celery) -> Dispatcher:
    """The outbox dispatcher of a process that publishes through ``app``."""
    runtime = app.hera_runtime
    return Dispatcher(lambda: runtime.sessions, celery_publish(app), relay_grace_s=runtime.settings.relay_grace_s)


def celery_queue_depth(app: Celery) -> QueueDepth:
    """Messages ready in a queue (not counting those a worker holds unacknowledged), from a
    passive declare; None when the broker cannot be asked."""
    names = app.hera_runtime.settings.queues

    def depth(queue: Queue) -> int | None:
        try:
            with app.connection_for_read() as connection:
                declared = connection.default_channel.queue_declare(physical_name(queue, names), passive=True)
                return int(declared.message_count)
        except Exception:
            return None

    return depth
