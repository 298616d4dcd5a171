"""Requests, subtasks, decisions and model calls: round trips, guarded transitions, idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Uuid, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from hera_router.db.enums import CallStatus, Executor, ModelRole, RequestStatus, SubtaskStatus
from hera_router.db.models import ModelCall, Request, Subtask, Tenant
from hera_router.db.repositories import (
    BatchRepository,
    DecisionRepository,
    ModelCallRepository,
    RequestRepository,
    SubtaskRepository,
)
from tests.integration.db.roundtrip import assert_round_trip


def test_request_round_trip(session: Session, tenant: Tenant) -> None:
    deadline = datetime(2026, 11, 27, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    batch = BatchRepository(session).create(tenant_id=tenant.id, policy="hera", name="nightly")
    request = RequestRepository(session).add(
        tenant_id=tenant.id,
        input="Plan a trip",
        policy="hera",
        priority=3,
        batch_id=batch.id,
        custom_id="req-1",
        meta={"source": "test", "tags": ["a", "b"], "nested": {"n": 1.5}},
        gold_answer="Lisbon",
        deadline=deadline,
    )
    loaded = assert_round_trip(session, request)
    assert loaded.status is RequestStatus.QUEUED
    assert loaded.deadline == deadline  # same instant, returned in UTC
    assert loaded.deadline.utcoffset() == timedelta(0)
    assert loaded.created_at.tzinfo is not None


def test_enum_is_stored_by_value(session: Session, request_row: Request) -> None:
    session.flush()
    raw = session.execute(
        text("SELECT status FROM requests WHERE id = :id").bindparams(bindparam("id", type_=Uuid())),
        {"id": request_row.id},
    ).scalar_one()
    assert raw == "queued"


def test_naive_datetimes_are_refused(session: Session, tenant: Tenant) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        RequestRepository(session).add(
            tenant_id=tenant.id,
            input="x",
            policy="hera",
            deadline=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
        )


def test_transition_is_guarded(session: Session, request_row: Request) -> None:
    requests = RequestRepository(session)
    start = (RequestStatus.QUEUED,)
    assert requests.transition(request_row.id, start, RequestStatus.RUNNING, count_attempt=True) is True
    # A duplicate delivery of the same task finds the request already running.
    assert requests.transition(request_row.id, start, RequestStatus.RUNNING, count_attempt=True) is False
    assert requests.transition(uuid.uuid4(), start, RequestStatus.RUNNING) is False

    session.expire_all()
    reloaded = requests.get(request_row.id)
    assert reloaded is not None
    assert reloaded.status is RequestStatus.RUNNING
    assert reloaded.attempts == 1

    assert requests.succeed(request_row.id, "4") is True
    assert requests.succeed(request_row.id, "5") is False
    assert requests.fail(request_row.id, "too late") is False
    session.expire_all()
    finished = requests.get(request_row.id)
    assert finished is not None
    assert (finished.status, finished.final_answer, finished.error) == (RequestStatus.SUCCEEDED, "4", None)


def test_advance_seq_and_usage(session: Session, request_row: Request) -> None:
    requests = RequestRepository(session)
    assert requests.advance_seq(request_row.id, 0, 1) is False  # not running yet
    requests.transition(request_row.id, (RequestStatus.QUEUED,), RequestStatus.RUNNING)
    assert requests.advance_seq(request_row.id, 0, 3) is True
    assert requests.advance_seq(request_row.id, 0, 3) is False  # redelivered router message
    requests.add_usage(request_row.id, cost_usd=0.25, llm_steps=1)
    requests.add_usage(request_row.id, cost_usd=0.5, slm_steps=2)
    session.expire_all()
    reloaded = requests.get(request_row.id)
    assert reloaded is not None
    assert (reloaded.current_seq, reloaded.cost_usd, reloaded.slm_steps, reloaded.llm_steps) == (3, 0.75, 2, 1)


def test_stale_finds_requests_without_progress(session: Session, tenant: Tenant) -> None:
    requests = RequestRepository(session)
    quiet, beating, done = (requests.add(tenant_id=tenant.id, input=str(i), policy="hera") for i in range(3))
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    for row in (quiet, beating, done):
        row.updated_at = long_ago
    done.status = RequestStatus.SUCCEEDED
    beating.status = RequestStatus.RUNNING
    session.flush()
    # A Core UPDATE would bump updated_at (onupdate); the heartbeat is what keeps `beating` alive.
    session.execute(
        update(Request).where(Request.id == beating.id).values(heartbeat_at=datetime.now(UTC), updated_at=long_ago)
    )

    stale = requests.stale(older_than=datetime.now(UTC) - timedelta(minutes=5))
    assert [row.id for row in stale] == [quiet.id]


def test_count_by_status(session: Session, request_row: Request) -> None:
    counts = RequestRepository(session).count_by_status()
    assert counts[RequestStatus.QUEUED] >= 1
    assert all(isinstance(status, RequestStatus) for status in counts)


def test_subtask_tree_round_trip_and_idempotent_add(session: Session, request_row: Request) -> None:
    subtasks = SubtaskRepository(session)
    root_id, executor = subtasks.add_id(
        request_id=request_row.id, seq=1, executor=Executor.LLM, branch="LLM", text="Find flights"
    )
    assert executor is Executor.LLM
    child_id, _ = subtasks.add_id(
        request_id=request_row.id,
        seq=1,
        part=1,
        parent_id=root_id,
        executor=Executor.SLM,
        branch="SLE",
        text="Compare prices",
    )
    child = subtasks.get(child_id)
    assert child is not None
    loaded = assert_round_trip(session, child)
    assert loaded.parent_id == root_id

    # A redelivered router task adding the same step gets the first row's id and executor.
    again_id, again_executor = subtasks.add_id(
        request_id=request_row.id, seq=1, executor=Executor.SLM, branch="URC", text="something else"
    )
    assert (again_id, again_executor) == (root_id, Executor.LLM)
    assert [(s.seq, s.part) for s in subtasks.list_for_request(request_row.id)] == [(1, 0), (1, 1)]

    parent = subtasks.get(root_id)
    assert parent is not None
    assert (parent.executor, parent.branch, parent.text) == (Executor.LLM, "LLM", "Find flights")
    assert [c.id for c in parent.children] == [child_id]


def test_subtask_transitions(session: Session, request_row: Request) -> None:
    subtasks = SubtaskRepository(session)
    subtask_id, _ = subtasks.add_id(request_id=request_row.id, seq=1, executor=Executor.SLM, branch="SSE", text="t")
    pending = (SubtaskStatus.PENDING,)
    assert subtasks.transition(subtask_id, pending, SubtaskStatus.RUNNING, count_attempt=True) is True
    assert subtasks.transition(subtask_id, pending, SubtaskStatus.RUNNING, count_attempt=True) is False
    assert subtasks.succeed(subtask_id, "done") is True
    assert subtasks.fail(subtask_id, "late failure") is False
    session.expire_all()
    reloaded = subtasks.get(subtask_id)
    assert reloaded is not None
    assert (reloaded.status, reloaded.output, reloaded.attempts) == (SubtaskStatus.SUCCEEDED, "done", 1)


def test_deleting_a_request_cascades(session: Session, request_row: Request) -> None:
    """ON DELETE CASCADE is in force on both databases (SQLite needs foreign_keys=ON)."""
    SubtaskRepository(session).add_id(request_id=request_row.id, seq=1, executor=Executor.SLM, branch="x", text="t")
    session.flush()
    session.execute(delete(Request).where(Request.id == request_row.id))
    remaining = session.scalar(select(func.count()).where(Subtask.request_id == request_row.id))
    assert remaining == 0


def test_decision_round_trip_and_first_decision_stands(session: Session, request_row: Request) -> None:
    decisions = DecisionRepository(session)
    created = decisions.add(
        request_id=request_row.id,
        seq=1,
        policy="hera",
        executor=Executor.SLM,
        branch="SLE",
        span=3,
        scores={"urc": 0.91, "sp_slm": [0.2, 0.4]},
        kappa=0.62,
        estimator_versions={"dp": 3, "sd": 1},
        elapsed_ms=4.5,
    )
    assert created is True
    decision = decisions.get(request_row.id, 1)
    assert decision is not None
    loaded = assert_round_trip(session, decision)
    assert loaded.scores == {"urc": 0.91, "sp_slm": [0.2, 0.4]}

    created = decisions.add(
        request_id=request_row.id,
        seq=1,
        policy="hera",
        executor=Executor.LLM,
        branch="LLM",
        elapsed_ms=1.0,
        fallback_reason="edge down",
    )
    assert created is False
    session.expire_all()
    again = decisions.get(request_row.id, 1)
    assert again is not None
    assert (again.id, again.executor, again.branch, again.fallback_reason) == (loaded.id, Executor.SLM, "SLE", None)
    assert [d.seq for d in decisions.list_for_request(request_row.id)] == [1]


def test_model_call_start_and_finish_are_idempotent(session: Session, request_row: Request) -> None:
    calls = ModelCallRepository(session)
    subtask_id, _ = SubtaskRepository(session).add_id(
        request_id=request_row.id, seq=1, executor=Executor.LLM, branch="LLM", text="t"
    )
    key = f"{subtask_id}:1"
    started: dict[str, Any] = {
        "request_id": request_row.id,
        "subtask_id": subtask_id,
        "backend": "openai",
        "model": "gpt-4o",
        "role": ModelRole.CLOUD,
        "estimated_cost_usd": 0.001,
    }
    assert calls.start(idempotency_key=key, **started) is True
    # A redelivered execution task starting the same call again leaves the first row alone.
    assert calls.start(idempotency_key=key, **{**started, "backend": "tgi", "estimated_cost_usd": 5.0}) is False
    outcome: dict[str, Any] = {
        "status": CallStatus.OK,
        "tokens_in": 120,
        "tokens_out": 40,
        "latency_ms": 812.5,
        "cost_usd": 0.0007,
    }
    assert calls.finish(key, **outcome) is True
    first = calls.by_key(key)
    assert first is not None
    loaded = assert_round_trip(session, first)
    assert (loaded.status, loaded.backend, loaded.tokens_in) == (CallStatus.OK, "openai", 120)
    assert loaded.estimated_cost_usd == pytest.approx(0.001)

    # A duplicate delivery finishing the same call changes nothing: the first counted its cost.
    assert calls.finish(key, **{**outcome, "cost_usd": 99.0, "status": CallStatus.ERROR}) is False
    session.expire_all()
    second = calls.by_key(key)
    assert second is not None
    assert (second.id, second.status) == (loaded.id, CallStatus.OK)
    assert second.cost_usd == pytest.approx(0.0007)
    count = session.scalar(select(func.count()).where(ModelCall.idempotency_key == key))
    assert count == 1
    assert calls.total_cost(request_row.id) == pytest.approx(0.0007)
    assert [c.id for c in calls.list_for_request(request_row.id)] == [loaded.id]


def test_stale_running_subtask_is_reclaimed_once(session: Session, request_row: Request) -> None:
    subtasks = SubtaskRepository(session)
    subtask_id, _ = subtasks.add_id(request_id=request_row.id, seq=1, executor=Executor.SLM, branch="SSE", text="t")
    cutoff = datetime.now(UTC) - timedelta(minutes=5)
    assert subtasks.reclaim_stale(subtask_id, cutoff) is False  # pending, not running
    subtasks.transition(subtask_id, (SubtaskStatus.PENDING,), SubtaskStatus.RUNNING, count_attempt=True)
    assert subtasks.reclaim_stale(subtask_id, cutoff) is False  # running, but recently touched
    session.execute(update(Subtask).where(Subtask.id == subtask_id).values(updated_at=cutoff - timedelta(minutes=1)))
    assert subtasks.reclaim_stale(subtask_id, cutoff) is True
    assert subtasks.reclaim_stale(subtask_id, cutoff) is False  # the first reclaim bumped updated_at
    session.expire_all()
    reloaded = subtasks.get(subtask_id)
    assert reloaded is not None
    assert (reloaded.status, reloaded.attempts) == (SubtaskStatus.RUNNING, 2)


def test_fallback_reassigns_subtask_and_records_it(session: Session, request_row: Request) -> None:
    subtasks, decisions = SubtaskRepository(session), DecisionRepository(session)
    decisions.add(request_id=request_row.id, seq=1, policy="hera", executor=Executor.SLM, branch="SSE", elapsed_ms=1.0)
    step_id, _ = subtasks.add_id(request_id=request_row.id, seq=1, executor=Executor.SLM, branch="SSE", text="t")
    subtasks.transition(step_id, (SubtaskStatus.PENDING,), SubtaskStatus.RUNNING)
    assert subtasks.move(step_id, (Executor.SLM, None), (Executor.LLM, None)) is True
    assert subtasks.move(step_id, (Executor.SLM, None), (Executor.LLM, None)) is False
    assert decisions.set_fallback(request_row.id, 1, Executor.LLM, "edge unavailable") is True
    assert decisions.set_fallback(request_row.id, 2, Executor.LLM, "no such step") is False
    session.expire_all()
    moved, decision = subtasks.get(step_id), decisions.get(request_row.id, 1)
    assert moved is not None
    assert decision is not None
    assert (moved.executor, moved.status) == (Executor.LLM, SubtaskStatus.PENDING)
    assert (decision.executor, decision.fallback_reason) == (Executor.LLM, "edge unavailable")


def test_has_parts(session: Session, request_row: Request) -> None:
    subtasks = SubtaskRepository(session)
    whole_id, _ = subtasks.add_id(request_id=request_row.id, seq=1, executor=Executor.LLM, branch="LLM", text="t")
    split_id, _ = subtasks.add_id(request_id=request_row.id, seq=2, executor=Executor.LLM, branch="LLM", text="t")
    subtasks.add_id(
        request_id=request_row.id, seq=2, part=1, parent_id=split_id, executor=Executor.SLM, branch="x", text="a"
    )
    assert subtasks.has_parts(whole_id) is False
    assert subtasks.has_parts(split_id) is True


def test_batch_progress_and_cancel(session: Session, tenant: Tenant) -> None:
    batches = BatchRepository(session)
    batch = batches.create(
        tenant_id=tenant.id, policy="all-llm", rejected=[{"line": 3, "error": "line 3: `input` is required"}]
    )
    requests = RequestRepository(session)
    rows = [requests.add(tenant_id=tenant.id, input=f"q{i}", policy="all-llm", batch_id=batch.id) for i in range(3)]
    batches.set_accepted(batch.id, 3)
    requests.transition(rows[0].id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
    requests.succeed(rows[0].id, "answer")
    requests.add_usage(rows[0].id, cost_usd=0.25, llm_steps=2)
    progress = batches.progress(batch.id)
    assert (progress.total, progress.done, progress.llm_steps) == (3, 1, 2)
    assert progress.cost_usd == pytest.approx(0.25)
    assert batches.cancel(batch.id) == 2
    session.expire_all()
    assert batches.progress(batch.id).counts == {RequestStatus.SUCCEEDED: 1, RequestStatus.CANCELLED: 2}
    loaded = assert_round_trip(session, batch)
    assert loaded.cancelled_at is not None
    assert loaded.rejected == [{"line": 3, "error": "line 3: `input` is required"}]
