"""The execution hop: one model call for one subtask, on the edge or the cloud queue."""

from __future__ import annotations

import uuid
from typing import Any

from celery import shared_task

from hera_router.db.enums import Executor
from hera_router.pipeline.names import TaskName
from hera_router.workers.base import HeraTask


@shared_task(base=HeraTask, bind=True, name=TaskName.RUN_SUBTASK, acks_late=True, max_retries=4)
def run_subtask(self: Any, subtask_id: str, executor: str, tier: str | None = None) -> str:
    """Run the subtask on ``executor``'s backend, record call, output and cost, hand on.

    Idempotent: the subtask is claimed by a guarded pending -> running transition and completed by
    a guarded running -> succeeded one; the model call is keyed by the subtask, and cost is added
    only when that key is new, so a duplicate delivery never charges twice. Retries: a transient
    cloud error retries with backoff while retries remain, then fails the request with the reason;
    a transient edge error falls back to the cloud at once (recorded on the decision). ``tier``
    (``HERA_MODELS``): the step runs on that tier's backend, and only while it is on that tier; an
    edge tier's error falls back one rung up.
    """
    final_attempt = self.request.retries >= self.max_retries
    outcome: str = self.app.pipeline.run_subtask(
        uuid.UUID(subtask_id), Executor(executor), final_attempt=final_attempt, tier=tier
    )
    return outcome
