"""The outbox's publish callable on a Celery app: ``send_task`` with the broker's errors mapped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerOperationalError

from hera_router.pipeline.outbox import Dispatcher, Publish, PublishError


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
