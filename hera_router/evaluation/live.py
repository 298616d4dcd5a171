"""Live runs: a request set through the real pipeline, read back as :class:`RequestOutcome`\\ s.

Embedded (the default): one process, the configured database, the ``memory://`` broker and real
in-process workers (``workers/system.py``), as ``hera-router run`` does. Distributed: the requests
are submitted to the configured deployment through the same service the API uses, and the
workers that are running there execute them.

Each request's record is read back from the database (subtasks, decisions, model calls) into the
same outcome shape a replay produces, so both are measured by ``metrics.py``. Model latency is
what the backend reported per call (simulated seconds for the ``sim`` backend, which does not
sleep), decision time is the ``elapsed_ms`` the router recorded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hera_router.agent.scoring import score
from hera_router.db.enums import CallStatus, ModelRole, RequestStatus, SubtaskStatus
from hera_router.evaluation.metrics import RequestOutcome, Status, StepRecord
from hera_router.routing.estimators import Estimators
from hera_router.training.replay import DEFAULT_FAMILY, ReplayTree

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from hera_router.config import Settings
    from hera_router.workers import HeraCelery

EVAL_TENANT = "evaluation"


@dataclass(frozen=True, slots=True)
class LiveItem:
    key: str
    request: str
    gold: str | None = None
    metric: str | None = None
    family: str = DEFAULT_FAMILY

    @classmethod
    def of_tree(cls, tree: ReplayTree) -> LiveItem:
        return cls(tree.key, tree.request, tree.gold, tree.metric, tree.family)

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {"input": self.request, "custom_id": self.key, "metadata": {"family": self.family}}
        if self.gold is not None:
            item["gold_answer"] = self.gold
        if self.metric is not None:
            item["metadata"]["metric"] = self.metric
        return item


def submit(app: HeraCelery, items: Sequence[LiveItem], policy: str) -> uuid.UUID:
    """Queue ``items`` as one batch routed by ``policy``; returns the batch id."""
    from hera_router.agent.batch_run import ensure_tenant
    from hera_router.api.service import SubmissionService
    from hera_router.workers.publisher import celery_dispatcher

    sessions = app.hera_runtime.sessions
    tenant = ensure_tenant(sessions, EVAL_TENANT)
    service = SubmissionService(app.settings, sessions, celery_dispatcher(app))
    submission = service.submit_batch(tenant.id, [item.to_api() for item in items], policy=policy, name=policy)
    if submission.rejected:
        raise ValueError("; ".join(r.message for r in submission.rejected))
    return submission.batch.id


def wait(
    sessions: sessionmaker[Session], batch_id: uuid.UUID, timeout_s: float, poll_s: float = 0.2
) -> list[uuid.UUID]:
    """Block until every request of the batch is finished; returns their ids."""
    from hera_router.db.repositories import BatchRepository, RequestRepository
    from hera_router.db.session import session_scope

    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(sessions) as session:
            batch = BatchRepository(session).get(batch_id)
            state = BatchRepository(session).progress(batch_id)
            total = batch.accepted if batch is not None else 0
        if state.done >= total:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"batch {batch_id}: {total - state.done} of {total} requests unfinished after {timeout_s:g} s"
            )
        time.sleep(poll_s)
    with session_scope(sessions) as session:
        return [request.id for request in RequestRepository(session).list_for_batch(batch_id)]


def outcomes(sessions: sessionmaker[Session], request_ids: Sequence[uuid.UUID]) -> list[RequestOutcome]:
    """Each finished request's record as an outcome (in the order of ``request_ids``)."""
    from hera_router.db.repositories import (
        DecisionRepository,
        ModelCallRepository,
        RequestRepository,
        SubtaskRepository,
    )
    from hera_router.db.session import session_scope

    found: list[RequestOutcome] = []
    with session_scope(sessions) as session:
        requests = {r.id: r for r in RequestRepository(session).list_by_ids(request_ids)}
        for request_id in request_ids:
            request = requests[request_id]
            subtasks = SubtaskRepository(session).list_for_request(request_id)
            decisions = {d.seq: d for d in DecisionRepository(session).list_for_request(request_id)}
            every_call = ModelCallRepository(session).list_for_request(request_id)
            calls = {c.subtask_id: c for c in every_call if c.status is CallStatus.OK}
            parents = {s.parent_id for s in subtasks if s.parent_id is not None}
            executed = sorted(
                (s for s in subtasks if s.id not in parents and s.status is SubtaskStatus.SUCCEEDED),
                key=lambda s: (s.seq, s.part),
            )
            steps: list[StepRecord] = []
            decided: set[int] = set()
            for subtask in executed:
                call = calls.get(subtask.id)
                decision = decisions.get(subtask.seq)
                first = subtask.seq not in decided
                decided.add(subtask.seq)
                steps.append(
                    StepRecord(
                        seq=subtask.seq,
                        executor=subtask.executor,
                        branch=subtask.branch,
                        tokens_in=call.tokens_in if call else 0,
                        tokens_out=call.tokens_out if call else 0,
                        # The paper's cost: cloud token dollars (transfer is in the full cost only).
                        remote_cost_usd=call.tokens_cost_usd if call and call.role is ModelRole.CLOUD else 0.0,
                        model_s=call.latency_ms / 1e3 if call else 0.0,
                        decision_s=decision.elapsed_ms / 1e3 if decision is not None and first else 0.0,
                        routed=decision is not None and "span_origin" not in decision.scores,
                    )
                )
            meta = request.meta or {}
            metric = meta.get("metric")
            answer = request.final_answer if request.status is RequestStatus.SUCCEEDED else None
            status: Status = "completed" if request.status is RequestStatus.SUCCEEDED else "failed"
            found.append(
                RequestOutcome(
                    key=request.custom_id or str(request.id),
                    family=str(meta.get("family", DEFAULT_FAMILY)),
                    status=status,
                    steps=tuple(steps),
                    answer=answer,
                    score=score(str(metric), answer, request.gold_answer)
                    if request.gold_answer is not None and metric
                    else 0.0,
                    note=request.error or "",
                    full_cost_usd=sum(c.cost_usd for c in every_call),
                )
            )
    return found


@contextmanager
def live_system(
    settings: Settings,
    *,
    distributed: bool = False,
    concurrency: int = 4,
    estimator_source: Callable[[], Estimators | None] | None = None,
) -> Iterator[HeraCelery]:
    """The app to submit to: an embedded system started here, or a client of the deployment.

    ``estimator_source`` replaces the registry as the embedded router's source of estimators (tests
    and evaluations that bring their own); the distributed workers always use their registry.
    """
    if distributed:
        from hera_router.workers import create_app

        app = create_app(settings)
        try:
            yield app
        finally:
            app.hera_runtime.close()
        return
    from hera_router.config import Mode
    from hera_router.workers.system import embedded_system

    embedded = settings.model_copy(update={"mode": Mode.EMBEDDED, "broker_url": "memory://"})
    with embedded_system(embedded, concurrency=concurrency) as system:
        if estimator_source is not None:
            system.app.pipeline.estimator_source = estimator_source
        yield system.app


def run_live(
    app: HeraCelery, items: Sequence[LiveItem], policy: str, *, timeout_s: float = 600
) -> list[RequestOutcome]:
    """Run ``items`` under ``policy`` on ``app``'s pipeline and read back their outcomes."""
    batch_id = submit(app, items, policy)
    ids = wait(app.hera_runtime.read_sessions, batch_id, timeout_s)
    return outcomes(app.hera_runtime.sessions, ids)
