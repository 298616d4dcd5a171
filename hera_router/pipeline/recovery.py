"""Recovery: the outbox relay (rows whose publish after commit did not happen) and the
reconciler (active requests whose next hop the broker lost or a dead worker held)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from hera_router.db.base import utcnow
from hera_router.db.enums import SubtaskStatus
from hera_router.db.repositories import OutboxRepository, RequestRepository, SubtaskRepository
from hera_router.db.session import session_scope
from hera_router.metrics import instruments as metrics
from hera_router.pipeline.names import TaskName, plan_task_id, run_task_id, verify_task_id
from hera_router.pipeline.services import Services

log = logging.getLogger(__name__)


class RecoveryHop:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    def relay(self, limit: int = 500) -> int:
        return self.services.dispatcher.relay(limit)

    def reconcile(self, limit: int = 200) -> int:
        """Re-drive active requests that made no progress within the deadline; returns how many.

        The broker may have lost a message, or a worker died holding one: the database says which
        hop is missing; that hop's outbox row is re-opened and published again (and left to the
        relay if publishing fails).
        """
        reopened: list[uuid.UUID] = []
        cutoff = utcnow() - timedelta(seconds=self.settings.reconcile_after_s)
        with session_scope(self.services.runtime.sessions) as session:
            requests = RequestRepository(session)
            subtasks = SubtaskRepository(session)
            outbox = OutboxRepository(session)
            for request in requests.stale(cutoff, limit):
                requests.heartbeat(request.id)
                seq = request.current_seq
                open_parts = [
                    s for s in subtasks.list_for_request(request.id)
                    if s.seq == seq and s.status in (SubtaskStatus.PENDING, SubtaskStatus.RUNNING)
                    and not (s.part == 0 and subtasks.has_parts(s.id))
                ]  # fmt: skip
                waiting = next(
                    (s for s in subtasks.list_for_request(request.id)
                     if s.seq == seq and s.part == 0 and s.status is SubtaskStatus.SUCCEEDED),
                    None,
                )  # fmt: skip
                if not open_parts and waiting is not None:
                    # Succeeded but the request did not move on: its verify hop was lost.
                    kwargs: dict[str, object] = {"subtask_id": str(waiting.id)}
                    reopened.append(outbox.reopen(TaskName.VERIFY_STEP, kwargs, verify_task_id(waiting.id)).id)
                elif not open_parts:
                    kwargs = {"request_id": str(request.id), "seq": seq}
                    reopened.append(outbox.reopen(TaskName.PLAN_STEP, kwargs, plan_task_id(request.id, seq)).id)
                else:
                    step = open_parts[0]
                    if step.status is SubtaskStatus.RUNNING:
                        subtasks.transition(step.id, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING)
                    kwargs = {"subtask_id": str(step.id), "executor": step.executor.value}
                    reopened.append(outbox.reopen(TaskName.RUN_SUBTASK, kwargs, run_task_id(step.id, step.executor)).id)
                log.warning("re-driving request %s at step %s (no progress since %s)", request.id, seq, cutoff)
        if reopened:
            metrics.REDRIVES.inc(len(reopened))
            # Published now rather than by the relay: nobody else is publishing these rows, and
            # the relay's grace period would hold them back for nothing.
            self.services.dispatcher.publish(reopened)
        return len(reopened)
