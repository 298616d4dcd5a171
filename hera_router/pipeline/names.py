"""Every task name of the system, and the deterministic task ids of the pipeline's hops.

Task names are the contract between producers (the API, the outbox relay, the reconciler, beat)
and the workers that register the tasks (``hera_router.workers.tasks``); they live here, as one
enum, so that no module spells one as a string literal and the API's write path needs no Celery.
A deterministic task id per hop makes a re-published message recognisable: the outbox keeps one
row per id, and Flower shows a re-drive as the same task.
"""

from __future__ import annotations

import enum
import uuid

from hera_router.db.enums import Executor


class TaskName(enum.StrEnum):
    # router queue
    PLAN_STEP = "routing.plan_step"
    VERIFY_STEP = "routing.verify_step"
    # edge / cloud queues (by the message's ``executor`` argument)
    RUN_SUBTASK = "execution.run_subtask"
    # maintenance queue (beat)
    RELAY_OUTBOX = "maintenance.relay_outbox"
    RECONCILE = "maintenance.reconcile"
    # training queue
    PROFILE = "training.profile"
    TRAIN_ESTIMATOR = "training.train_estimator"
    SHADOW_REQUEST = "training.shadow_request"
    RETRAIN_NIGHTLY = "training.retrain_nightly"
    REAP_TRAINING_RUNS = "training.reap_abandoned_runs"


LONG_TRAINING_TASKS = (TaskName.PROFILE, TaskName.TRAIN_ESTIMATOR, TaskName.RETRAIN_NIGHTLY)
"""Tasks that run for minutes to hours (acked early; their own time limits)."""


def plan_task_id(request_id: uuid.UUID, seq: int) -> str:
    """The router hop for (request, step)."""
    return f"plan:{request_id}:{seq}"


def verify_task_id(subtask_id: uuid.UUID, tier: str | None = None) -> str:
    """The verify hop of an SLM step, or of a step's run on a model tier (a step that climbs the
    ladder is verified once per rung, so the rung is part of the id)."""
    if tier is not None:
        return f"verify:{subtask_id}:tier:{tier}"
    return f"verify:{subtask_id}"


def run_task_id(subtask_id: uuid.UUID, executor: Executor, tier: str | None = None) -> str:
    """The execution hop; the executor (or the model tier) is part of it because a fallback or an
    escalation re-sends the same subtask to another queue."""
    if tier is not None:
        return f"run:{subtask_id}:tier:{tier}"
    return f"run:{subtask_id}:{executor.value}"


def run_kwargs(subtask_id: uuid.UUID, executor: Executor, tier: str | None = None) -> dict[str, object]:
    """The execution hop's arguments; ``tier`` only when the step is on a model tier, so a
    two-role deployment's messages stay what they always were."""
    kwargs: dict[str, object] = {"subtask_id": str(subtask_id), "executor": executor.value}
    if tier is not None:
        kwargs["tier"] = tier
    return kwargs


def shadow_task_id(request_id: uuid.UUID) -> str:
    """The shadow profiling run of a finished request."""
    return f"shadow:{request_id}"
