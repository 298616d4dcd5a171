"""Queue names, their kombu declarations and the task routes.

Queues are declared explicitly and ``task_create_missing_queues`` is off, so a task routed to a
misspelt queue fails at publish time instead of piling up in a queue nobody consumes.
"""

from __future__ import annotations

import enum
from typing import Any

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


# Task-name prefix -> queue. Execution tasks go to edge or cloud by their ``executor`` argument
# (see ExecutorRouter), so they have no static route.
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


EXECUTION_PREFIX = "execution."
EXECUTOR_QUEUES: dict[str, Queue] = {"slm": Queue.EDGE, "llm": Queue.CLOUD}


class ExecutorRouter:
    """Celery router: an ``execution.*`` task goes to the queue of its ``executor`` argument.

    Deriving the queue from the message itself means a re-published message (outbox relay,
    reconciler) always lands where the routing decision sent it, with nothing else to remember.
    """

    def __init__(self, names: QueueNames) -> None:
        self.names = names

    def __call__(
        self, name: str, args: Any, kwargs: dict[str, Any] | None, options: Any, task: Any = None, **_: Any
    ) -> dict[str, str] | None:
        if not name.startswith(EXECUTION_PREFIX):
            return None
        executor = (kwargs or {}).get("executor")
        if executor not in EXECUTOR_QUEUES:
            raise ValueError(f"{name}: executor must be one of {sorted(EXECUTOR_QUEUES)}, got {executor!r}")
        return {"queue": physical_name(EXECUTOR_QUEUES[executor], self.names)}


def task_routes(names: QueueNames) -> list[Any]:
    static = {f"{prefix}*": {"queue": physical_name(queue, names)} for prefix, queue in ROUTES_BY_PREFIX.items()}
    return [ExecutorRouter(names), static]
