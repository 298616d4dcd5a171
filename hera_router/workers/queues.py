"""Queue names, their kombu declarations and the task routes.

Queues are declared explicitly and ``task_create_missing_queues`` is off, so a task routed to a
misspelt queue fails at publish time instead of piling up in a queue nobody consumes.
"""

from __future__ import annotations

import enum

from kombu import Exchange
from kombu import Queue as KombuQueue

from hera_router.config import QueueNames


class Queue(enum.StrEnum):
    """Logical queues; the physical names come from ``Settings.queues``."""

    ROUTER = "router"
    EDGE = "edge"
    CLOUD = "cloud"
    TRAINING = "training"
    MAINTENANCE = "maintenance"


# Task-name prefix -> queue. Execution tasks are published with an explicit queue (edge or cloud)
# chosen by the routing decision, so they have no static route.
ROUTES_BY_PREFIX: dict[str, Queue] = {
    "routing.": Queue.ROUTER,
    "training.": Queue.TRAINING,
    "maintenance.": Queue.MAINTENANCE,
}


def physical_name(queue: Queue, names: QueueNames) -> str:
    name: str = getattr(names, queue.value)
    return name


def declarations(names: QueueNames) -> tuple[KombuQueue, ...]:
    """One direct exchange per queue, named like the queue (Celery's default topology)."""
    declared = []
    for queue in Queue:
        name = physical_name(queue, names)
        declared.append(KombuQueue(name, Exchange(name, type="direct"), routing_key=name))
    return tuple(declared)


def task_routes(names: QueueNames) -> dict[str, dict[str, str]]:
    return {
        f"{prefix}*": {"queue": physical_name(queue, names)} for prefix, queue in ROUTES_BY_PREFIX.items()
    }
