"""Helpers for the pipeline suites: submit simulated requests, wait, check the record."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, CallStatus, RequestStatus, SubtaskStatus
from hera_router.db.models import Request
from hera_router.db.repositories import (
    DecisionRepository,
    ModelCallRepository,
    RequestRepository,
    SubtaskRepository,
    TenantRepository,
)
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.pipeline.outbox import Dispatcher
from hera_router.simulator.generate import TaskRecord


def submit(
    sessions: sessionmaker[Session], dispatcher: Dispatcher, tasks: Sequence[TaskRecord], policy: str
) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    queued: list[uuid.UUID] = []
    with session_scope(sessions) as session:
        tenants = TenantRepository(session)
        tenant = tenants.by_name("pipeline-tests") or tenants.create("pipeline-tests")
        for task in tasks:
            request = RequestRepository(session).add(
                tenant_id=tenant.id,
                input=task.request,
                policy=policy,
                custom_id=task.id,
                gold_answer=task.gold,
                meta={"metric": task.metric, "family": task.family},
            )
            ids.append(request.id)
            queued.append(
                dispatcher.enqueue(
                    session, TaskName.PLAN_STEP, {"request_id": str(request.id), "seq": 0}, plan_task_id(request.id, 0)
                )
            )
    dispatcher.publish(queued)
    return ids


def wait_until_finished(
    sessions: sessionmaker[Session], ids: Sequence[uuid.UUID], timeout_s: float
) -> dict[uuid.UUID, Request]:
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(sessions) as session:
            rows = {request_id: RequestRepository(session).get(request_id) for request_id in ids}
        pending = [i for i, row in rows.items() if row is None or row.status not in TERMINAL_REQUEST_STATUSES]
        if not pending:
            return {i: row for i, row in rows.items() if row is not None}
        if time.monotonic() > deadline:
            statuses = Counter(row.status.value for row in rows.values() if row is not None)
            raise AssertionError(f"{len(pending)} of {len(ids)} requests unfinished after {timeout_s} s: {statuses}")
        time.sleep(0.1)


def assert_consistent_record(sessions: sessionmaker[Session], request_id: uuid.UUID) -> None:
    """Each executed step: one decision, one successful model call; totals equal the calls."""
    with session_scope(sessions) as session:
        request = RequestRepository(session).get(request_id)
        assert request is not None
        subtasks = SubtaskRepository(session).list_for_request(request_id)
        decisions = DecisionRepository(session).list_for_request(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
        total = ModelCallRepository(session).total_cost(request_id)
    steps = [s for s in subtasks if s.part == 0]
    assert [s.seq for s in steps] == list(range(len(steps))), "steps must be contiguous from 0"
    assert [d.seq for d in decisions] == [s.seq for s in steps], "one decision per step"
    ok_calls = Counter(c.subtask_id for c in calls if c.status is CallStatus.OK)
    executed = [s for s in subtasks if not any(c.parent_id == s.id for c in subtasks)]
    # A step the verify stage re-ran on the LLM has two calls: the SLM's, kept, and the LLM's.
    escalated = {s.id for s in subtasks if s.branch == "verify"}
    for subtask in executed:
        if subtask.status is SubtaskStatus.SUCCEEDED:
            expected = 2 if subtask.id in escalated else 1
            found = ok_calls[subtask.id]
            assert found == expected, f"step {subtask.seq}.{subtask.part} has {found} calls, expected {expected}"
    assert sum(ok_calls.values()) == request.slm_steps + request.llm_steps + len(escalated)
    assert abs(total - request.cost_usd) < 1e-9
    if request.status is RequestStatus.SUCCEEDED:
        assert request.final_answer is not None
