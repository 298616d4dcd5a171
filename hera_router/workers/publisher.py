"""What the pipeline needs from the broker, on a Celery app: the outbox's publish callable
(``send_task`` with the broker's errors mapped) and the depth of a queue (for the reconciler)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerOperationalError

from hera_router.pipeline.outbox import Dispatcher, Publish, PublishError
from hera_router.pipeline.queues import Queue, physical_name
from hera_router.pipeline.services import HeldMessages, QueueDepth


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

    def depth(queue: Queue | str) -> int | None:
        name = physical_name(queue, names) if isinstance(queue, Queue) else queue
        try:
            with app.connection_for_read() as connection:
                declared = connection.default_channel.queue_declare(name, passive=True)
                return int(declared.message_count)
        except Exception as exc:  # any broker trouble means "cannot say"
            # A queue the broker does not know holds nothing: a Redis restarted empty has lost
            # its declarations too (kombu and RabbitMQ both answer 404 "NOT_FOUND - no queue").
            if "NOT_FOUND" in str(exc):
                return 0
            return None

    return depth


def celery_held_messages(app: Celery) -> HeldMessages:
    """Task ids of messages a worker took from the broker at least ``older_than_s`` ago and has not
    acknowledged: on Redis, kombu's unacked index. A live worker acknowledges a routing hop within
    milliseconds and runs a model call under a step claim the reconciler can see, so a hop message
    held this long by no live claim was taken by a worker that died (it would come back only after
    the visibility timeout). None when the broker cannot say; RabbitMQ needs no such look: it gives
    a dead consumer's messages back to the queue at once."""
    settings = app.hera_runtime.settings
    if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        return lambda older_than_s: None
    import redis

    client = redis.Redis.from_url(settings.broker_url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def held(older_than_s: float) -> set[str] | None:
        try:
            found = client.zrangebyscore("unacked_index", "-inf", time.time() - older_than_s, start=0, num=5000)
            tags = [tag for tag in found if isinstance(tag, (bytes, str))]
            if not tags:
                return set()
            ids: set[str] = set()
            for raw in client.hmget("unacked", tags):
                if raw:
                    task_id = json.loads(raw)[0].get("headers", {}).get("id")
                    if task_id:
                        ids.add(str(task_id))
            return ids
        except Exception:
            return None

    return held
