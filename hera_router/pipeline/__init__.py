"""The agent pipeline: plan a step, run a subtask, verify, re-drive what stalled.

The Celery tasks (``hera_router.workers.tasks``) are thin wrappers around the hops assembled
here. Every hop is idempotent: it starts from what the database says, changes state only through
guarded transitions, and queues its next hop through the outbox in the same transaction, so a
redelivered, duplicated or re-driven message finds nothing left to do and charges nothing twice.

Step life cycle::

    routing.plan_step(request, seq)      policy decides -> decision row + subtask row(s) -> run
    execution.run_subtask(subtask, exec) model call -> output + cost -> verify (SLM step of a
                                         verifying policy) or hand on (progress.hand_on)
    routing.verify_step(subtask)         keep the result (hand on) or re-run one rung up (the LLM
                                         in the two-tier case)
    progress.hand_on                     next part of a decomposition, next step of a span,
                                         final answer, or plan_step(seq + 1)
    recovery.relay / reconcile           publish what missed its publish; re-drive stalled requests

Spans: a decision covering ``span`` steps is copied onto each covered step with the span that is
left (``span - 1``, ...), so every step has exactly one decision row and the execution hop only
needs to look at the decision of the step it just ran.

What happens after a step is decided by ``routing/steps.py`` (pure, shared with the replays);
the hops carry it out in their guarded transactions.

Nothing in this package imports Celery: messages leave through the outbox's publish callable.
"""

from __future__ import annotations

import uuid

from hera_router.db.enums import Executor
from hera_router.pipeline.execution import ExecutionHop
from hera_router.pipeline.recovery import RecoveryHop
from hera_router.pipeline.routing import RoutingHop
from hera_router.pipeline.services import EstimatorSource, Services
from hera_router.routing.base import Decision

__all__ = ["Pipeline", "Services"]


class Pipeline:
    """The hops of one process over one set of services (the caller builds the :class:`Services`)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.routing = RoutingHop(self.services)
        self.execution = ExecutionHop(self.services, self.routing)
        self.recovery = RecoveryHop(self.services)

    @property
    def estimator_source(self) -> EstimatorSource:
        return self.services.estimator_source

    @estimator_source.setter
    def estimator_source(self, source: EstimatorSource) -> None:
        self.services.estimator_source = source

    def plan_step(self, request_id: uuid.UUID, seq: int) -> Decision | None:
        return self.routing.plan_step(request_id, seq)

    def verify_step(self, subtask_id: uuid.UUID) -> str:
        return self.routing.verify_step(subtask_id)

    def run_subtask(
        self, subtask_id: uuid.UUID, executor: Executor, *, final_attempt: bool = True, tier: str | None = None
    ) -> str:
        return self.execution.run_subtask(subtask_id, executor, final_attempt=final_attempt, tier=tier)

    def relay(self, limit: int = 500) -> int:
        return self.recovery.relay(limit)

    def reconcile(self, limit: int = 200) -> int:
        return self.recovery.reconcile(limit)
