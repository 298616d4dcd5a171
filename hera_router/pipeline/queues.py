"""The logical queues and which task goes to which.

The physical names come from ``Settings.queues``; the kombu declarations and the Celery router
that applies :data:`QUEUE_OF` live in ``hera_router.workers.queues``.
"""

from __future__ import annotations

import enum

from hera_router.config import QueueNames
from hera_router.db.enums import Executor
from hera_router.pipeline.names import TaskName


class Queue(enum.StrEnum):
    """Logical queues; the physical names come from ``Settings.queues``."""

    ROUTER = "router"
    EDGE = "edge"
    CLOUD = "cloud"
    TRAINING = "training"
    MAINTENANCE = "maintenance"


QUEUE_OF: dict[TaskName, Queue | None] = {
    TaskName.PLAN_STEP: Queue.ROUTER,
    TaskName.VERIFY_STEP: Queue.ROUTER,
    # Goes to the queue of its ``executor`` argument (EXECUTOR_QUEUES), so it has no static route.
    TaskName.RUN_SUBTASK: None,
    TaskName.RELAY_OUTBOX: Queue.MAINTENANCE,
    TaskName.RECONCILE: Queue.MAINTENANCE,
    TaskName.PROFILE: Queue.TRAINING,
    TaskName.TRAIN_ESTIMATOR: Queue.TRAINING,
    TaskName.SHADOW_REQUEST: Queue.TRAINING,
    TaskName.RETRAIN_NIGHTLY: Queue.TRAINING,
    TaskName.REAP_TRAINING_RUNS: Queue.TRAINING,
}
"""Every task's queue; a test checks that no task name is missing."""

EXECUTOR_QUEUES: dict[Executor, Queue] = {Executor.SLM: Queue.EDGE, Executor.LLM: Queue.CLOUD}


def physical_name(queue: Queue, names: QueueNames) -> str:
    name: str = getattr(names, queue.value)
    return name
