"""Queue names, their kombu declarations and the task routes.

Queues are declared explicitly and ``task_create_missing_queues`` is off, so a task routed to a
misspelt queue fails at publish time instead of piling up in a queue nobody consumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kombu import Exchange
from kombu import Queue as KombuQueue

from hera_router.config import QueueNames
from hera_router.db.enums import Executor
from hera_router.pipeline.names import TaskName
from hera_router.pipeline.queues import EXECUTOR_QUEUES, QUEUE_OF, Queue, physical_name

__all__ = ["ExecutorRouter", "Queue", "declarations", "physical_name", "task_routes"]


def declarations(names: QueueNames, tier_queues: Mapping[str, str] | None = None) -> tuple[KombuQueue, ...]:
    """One direct exchange per queue, named like the queue (Celery's default topology); the model
    tiers' own queues (``HERA_MODELS``) too."""
    physical = [physical_name(queue, names) for queue in Queue]
    physical += [name for name in (tier_queues or {}).values() if name not in physical]
    return tuple(KombuQueue(name, Exchange(name, type="direct"), routing_key=name) for name in dict.fromkeys(physical))


class ExecutorRouter:
    """Celery router: the execution task goes to the queue of its ``executor`` argument.

    Deriving the queue from the message itself means a re-published message (outbox relay,
    reconciler) always lands where the routing decision sent it, with nothing else to remember.
    """

    def __init__(self, names: QueueNames, tier_queues: Mapping[str, str] | None = None) -> None:
        self.names = names
        self.tier_queues = dict(tier_queues or {})

    def __call__(
        self, name: str, args: Any, kwargs: dict[str, Any] | None, options: Any, task: Any = None, **_: Any
    ) -> dict[str, str] | None:
        if name != TaskName.RUN_SUBTASK:
            return None
        tier = (kwargs or {}).get("tier")
        if tier is not None:
            # A step on a model tier goes to that tier's queue (each site or GPU class its workers).
            try:
                return {"queue": self.tier_queues[str(tier)]}
            except KeyError:
                known = sorted(self.tier_queues) or "none (HERA_MODELS is empty)"
                raise ValueError(f"{name}: no model tier {tier!r} is configured; tiers: {known}") from None
        executor = (kwargs or {}).get("executor")
        try:
            queue = EXECUTOR_QUEUES[Executor(str(executor))]
        except ValueError:
            choices = sorted(e.value for e in EXECUTOR_QUEUES)
            raise ValueError(f"{name}: executor must be one of {choices}, got {executor!r}") from None
        return {"queue": physical_name(queue, self.names)}


def task_routes(names: QueueNames, tier_queues: Mapping[str, str] | None = None) -> list[Any]:
    static = {str(task): {"queue": physical_name(queue, names)} for task, queue in QUEUE_OF.items() if queue}
    return [ExecutorRouter(names, tier_queues), static]
