"""The router hop: decide who runs the next step of a request."""

from __future__ import annotations

import uuid
from typing import Any

from celery import shared_task

from hera_router.pipeline.names import TaskName
from hera_router.workers.base import HeraTask


@shared_task(base=HeraTask, bind=True, name=TaskName.PLAN_STEP, acks_late=True, max_retries=5)
def plan_step(self: Any, request_id: str, seq: int) -> None:
    """Run the request's policy for step ``seq``, record the decision, queue the execution.

    Idempotent: it acts only while the request is active and at step ``seq``; a step already
    decided keeps its first decision (re-queueing its execution is a no-op in the outbox).
    Retries: transient database/broker errors retry with backoff (HeraTask); a redelivery after a
    worker crash (acks_late + reject_on_worker_lost) is safe for the same reasons.
    """
    self.app.pipeline.plan_step(uuid.UUID(request_id), int(seq))


@shared_task(base=HeraTask, bind=True, name=TaskName.VERIFY_STEP, acks_late=True, max_retries=5)
def verify_step(self: Any, subtask_id: str) -> None:
    """The verify stage: keep an SLM step's result, or re-run the step on the cloud.

    Idempotent: it acts only on a succeeded SLM step of a request still at that step; the
    escalation is a guarded state change plus a run task with a deterministic id, so a redelivered
    or re-driven copy finds nothing to do. Retries: transient errors retry with backoff (HeraTask).
    """
    self.app.pipeline.verify_step(uuid.UUID(subtask_id))
