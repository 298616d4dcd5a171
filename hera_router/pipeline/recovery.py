"""Recovery: the outbox relay (rows whose publish after commit did not happen) and the
reconciler (active requests whose next hop the broker lost or a dead worker held)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import SubtaskStatus
from hera_router.db.repositories import OutboxRepository, RequestRepository, SubtaskRepository, WorkerRepository
from hera_router.db.session import session_scope
from hera_router.metrics import instruments as metrics
from hera_router.pipeline import graph
from hera_router.pipeline.names import TaskName, plan_task_id, run_kwargs, run_task_id, verify_task_id
from hera_router.pipeline.queues import EXECUTOR_QUEUES, Queue
from hera_router.pipeline.services import Services

log = logging.getLogger(__name__)


class RecoveryHop:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        # Since when this process has reached the database without a break (monotonic seconds).
        # Right after an outage every heartbeat is old: no worker is taken for dead until they
        # all had ``worker_timeout_s`` to beat again.
        self._healthy_since: float | None = None

    def relay(self, limit: int = 500) -> int:
        return self.services.dispatcher.relay(limit)

    def reconcile(self, limit: int = 200) -> int:
        """Re-drive what stalled; returns how many hops were re-opened.

        Three signals, cheapest first, so that a stall is found within seconds without re-driving
        work that is merely waiting its turn:

        - a running step whose worker stopped beating (``HERA_WORKER_TIMEOUT_S``) is given back;
        - an active request idle for ``HERA_LOST_AFTER_S`` lost its next hop's message if that
          queue is empty (a broker restarted empty) or the broker says a worker took the message
          that long ago without acknowledging it (a dead worker's prefetched message);
        - an active request idle for ``HERA_RECONCILE_AFTER_S`` is re-driven whatever the broker
          says (the backstop).

        A re-drive re-opens the hop's outbox row and publishes it again under the same task id;
        every hop is idempotent, so a message that was not lost after all costs one no-op.
        """
        settings = self.settings
        now = utcnow()
        timeout = timedelta(seconds=settings.worker_timeout_s)
        reopened: list[uuid.UUID] = []
        depths: dict[Queue | str, int | None] = {}

        held: list[set[str] | None] = []

        def lost(queue: Queue | str, task_id: str) -> bool:
            """Whether the hop's message is gone: nothing waits in its queue, or a worker took it
            ``lost_after_s`` ago without acknowledging it (and no live claim explains that)."""
            if queue not in depths:
                depths[queue] = self.services.queue_depth(queue)
            if depths[queue] == 0:
                return True
            if not held:
                held.append(self.services.held_messages(settings.lost_after_s))
            return held[0] is not None and task_id in held[0]

        try:
            with session_scope(self.services.runtime.sessions) as session:
                self._reconcile(session, now, timeout, limit, lost, reopened)
        except Exception:
            self._healthy_since = None
            raise
        if reopened:
            metrics.REDRIVES.inc(len(reopened))
            # Published now rather than by the relay: nobody else is publishing these rows, and
            # the relay's grace period would hold them back for nothing.
            self.services.dispatcher.publish(reopened)
        return len(reopened)

    def _reconcile(
        self,
        session: Session,
        now: datetime,
        timeout: timedelta,
        limit: int,
        lost: Callable[[Queue | str, str], bool],
        reopened: list[uuid.UUID],
    ) -> None:
        settings = self.settings
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()
        liveness_known = time.monotonic() - self._healthy_since >= settings.worker_timeout_s
        requests = RequestRepository(session)
        subtasks = SubtaskRepository(session)
        outbox = OutboxRepository(session)
        workers = WorkerRepository(session)
        redriven: set[uuid.UUID] = set()
        if liveness_known:
            for step in workers.orphaned_steps(now - timeout, limit):
                if subtasks.transition(step.id, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING):
                    redriven.add(step.request_id)
                    kwargs = run_kwargs(step.id, step.executor, step.tier)
                    task_id = run_task_id(step.id, step.executor, step.tier)
                    reopened.append(outbox.reopen(TaskName.RUN_SUBTASK, kwargs, task_id).id)
                    log.warning(
                        "re-driving step %s of request %s: its worker %s stopped",
                        step.seq,
                        step.request_id,
                        step.claimed_by,
                    )
        # Until liveness is known, every running step counts as worked on (none is given back).
        fresh_after = now - timeout if liveness_known else None
        backstop = now - timedelta(seconds=settings.reconcile_after_s)
        idle = min(settings.lost_after_s, settings.reconcile_after_s)
        stale = list(requests.stale(now - timedelta(seconds=idle), limit))
        # A graph request waits for its plan's nodes (each a request the loop re-drives itself);
        # one whose node failed fails with it.
        graph.graph_failures(session, [r.id for r in stale])
        waiting = graph.waiting_graphs(session, [r.id for r in stale])
        for request in stale:
            if request.id in waiting:
                # Out of the scan for a while, so that many long graphs never crowd stalled
                # requests out of its limit.
                requests.heartbeat(request.id)
                continue
            if request.id in redriven:
                continue
            hop = self._missing_hop(subtasks, request.id, request.current_seq, fresh_after)
            if hop is None:
                continue  # its step is running on a live worker: a long call, not a stall
            task, kwargs, task_id, queue, held = hop
            idle_since = max(request.updated_at, request.heartbeat_at or request.updated_at)
            if "tier" in kwargs:  # a step on a model tier waits in that tier's own queue
                queue = settings.tier_queue(settings.tier(str(kwargs["tier"])))
            if idle_since >= backstop and not lost(queue, task_id):
                continue  # its message may be waiting in a busy queue
            if held is not None:  # running, but its worker is gone: give it back first
                subtasks.transition(held, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING)
            requests.heartbeat(request.id)
            reopened.append(outbox.reopen(task, kwargs, task_id).id)
            log.warning(
                "re-driving request %s at step %s (no progress since %s)",
                request.id,
                request.current_seq,
                idle_since,
            )

    @staticmethod
    def _missing_hop(
        subtasks: SubtaskRepository, request_id: uuid.UUID, seq: int, fresh_after: datetime | None
    ) -> tuple[TaskName, dict[str, object], str, Queue | str, uuid.UUID | None] | None:
        """The hop the request waits for at step ``seq``, from what the database says, and the
        running step to give back first (not touched since ``fresh_after``); None if its step is
        running and fresh (``fresh_after`` None: every running step counts as fresh)."""
        rows = [s for s in subtasks.list_for_request(request_id) if s.seq == seq]
        parents = {s.parent_id for s in rows if s.parent_id is not None}
        open_parts = [
            s for s in rows if s.status in (SubtaskStatus.PENDING, SubtaskStatus.RUNNING) and s.id not in parents
        ]
        if open_parts:
            step = open_parts[0]
            held = None
            if step.status is SubtaskStatus.RUNNING:
                if fresh_after is None or step.updated_at >= fresh_after:
                    return None
                held = step.id
            kwargs = run_kwargs(step.id, step.executor, step.tier)
            queue = EXECUTOR_QUEUES[step.executor]  # on a model tier, the caller asks the tier's queue
            return TaskName.RUN_SUBTASK, kwargs, run_task_id(step.id, step.executor, step.tier), queue, held
        waiting = next((s for s in rows if s.part == 0 and s.status is SubtaskStatus.SUCCEEDED), None)
        if waiting is not None:
            # Succeeded but the request did not move on: its verify hop was lost.
            kwargs = {"subtask_id": str(waiting.id)}
            return TaskName.VERIFY_STEP, kwargs, verify_task_id(waiting.id, waiting.tier), Queue.ROUTER, None
        kwargs = {"request_id": str(request_id), "seq": seq}
        return TaskName.PLAN_STEP, kwargs, plan_task_id(request_id, seq), Queue.ROUTER, None
