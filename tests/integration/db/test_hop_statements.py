"""The execution hop's combined statements (``db/repositories/hops.py``): one data-modifying CTE
each on Postgres, the repositories' separate statements on SQLite; the same outcome on both, and
on Postgres one statement each (counted)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.counting import counting
from hera_router.db.enums import CallStatus, Executor, ModelRole, SubtaskStatus
from hera_router.db.models import ModelCall, Request, Subtask
from hera_router.db.repositories import ModelCallRepository, RequestRepository, SubtaskRepository
from hera_router.db.repositories.hops import claim_and_read, complete_call

COMPONENTS = {
    "tokens_cost_usd": 0.002,
    "gpu_cost_usd": 0.0005,
    "energy_cost_usd": 0.0002,
    "transfer_cost_usd": 0.0003,
    "bytes_sent": 120,
}


def _steps(session: Session, request: Request) -> tuple[Subtask, Subtask]:
    subtasks = SubtaskRepository(session)
    done_id, _ = subtasks.add_id(request_id=request.id, seq=0, executor=Executor.LLM, branch="LLM", text="first")
    subtasks.transition(done_id, [SubtaskStatus.PENDING], SubtaskStatus.RUNNING)
    subtasks.succeed(done_id, "four", next_subtask="second")
    step_id, _ = subtasks.add_id(request_id=request.id, seq=1, executor=Executor.SLM, branch="SSE", text="second")
    session.flush()
    done, step = subtasks.get(done_id), subtasks.get(step_id)
    assert done is not None
    assert step is not None
    return done, step


def _stale() -> object:
    return utcnow() - timedelta(minutes=5)


def test_claim_takes_the_step_heartbeats_and_reads_the_steps(session: Session, request_row: Request) -> None:
    done, step = _steps(session, request_row)
    taken = claim_and_read(session, step.id, Executor.SLM, _stale(), claimed_by="host:1")  # type: ignore[arg-type]
    assert taken is not None
    subtask, request, steps = taken
    assert (subtask.id, subtask.request_id, subtask.seq, subtask.part) == (step.id, request_row.id, 1, 0)
    assert (subtask.attempts, subtask.status, subtask.executor) == (1, SubtaskStatus.RUNNING, Executor.SLM)
    assert request is not None
    assert (request.id, request.policy, request.input, request.tenant_id) == (
        request_row.id,
        "hera",
        "What is 2 + 2?",
        request_row.tenant_id,
    )
    assert (steps[0].seq, steps[0].status, steps[0].output) == (0, SubtaskStatus.SUCCEEDED, "four")
    assert [s.id for s in steps] == [done.id, step.id]
    session.expire_all()
    row = session.get(Subtask, step.id)
    assert row is not None
    assert (row.status, row.claimed_by) == (SubtaskStatus.RUNNING, "host:1")
    heartbeat = session.get(Request, request_row.id)
    assert heartbeat is not None
    assert heartbeat.heartbeat_at is not None


def test_claim_is_guarded(session: Session, request_row: Request) -> None:
    _, step = _steps(session, request_row)
    assert claim_and_read(session, step.id, Executor.LLM, _stale()) is None  # the other executor
    assert claim_and_read(session, step.id, Executor.SLM, _stale(), tier="small") is None  # not on that tier
    assert claim_and_read(session, step.id, Executor.SLM, _stale()) is not None
    assert claim_and_read(session, step.id, Executor.SLM, _stale()) is None  # running, not stale
    # Running but untouched since long before: a second claim takes it over and counts an attempt.
    taken = claim_and_read(session, step.id, Executor.SLM, utcnow() + timedelta(minutes=1))
    assert taken is not None
    assert taken.subtask.attempts == 2


def _complete(session: Session, request: Request, step: Subtask, key: str) -> tuple[bool, bool]:
    return complete_call(
        session,
        subtask_id=step.id,
        request_id=request.id,
        call_key=key,
        executor=Executor.SLM,
        output="five",
        raw_output="RESULT: five",
        next_subtask=None,
        problems=["guessed"],
        confidence=-0.25,
        backend="sim",
        model="sim-slm",
        tokens_in=40,
        tokens_out=8,
        latency_ms=12.5,
        cost_usd=0.003,
        attempts=1,
        components=COMPONENTS,
    )


def _start(session: Session, request: Request, step: Subtask, key: str) -> None:
    ModelCallRepository(session).start(
        idempotency_key=key,
        request_id=request.id,
        subtask_id=step.id,
        backend="sim",
        model="sim-slm",
        role=ModelRole.EDGE,
        estimated_cost_usd=0.01,
    )


def test_completion_keeps_the_result_records_the_call_and_adds_the_cost_once(
    session: Session, request_row: Request
) -> None:
    _, step = _steps(session, request_row)
    assert claim_and_read(session, step.id, Executor.SLM, _stale()) is not None
    _start(session, request_row, step, "call:a")
    assert _complete(session, request_row, step, "call:a") == (True, True)
    assert _complete(session, request_row, step, "call:a") == (False, False)  # a duplicate delivery
    session.expire_all()
    row = session.get(Subtask, step.id)
    assert row is not None
    assert (row.status, row.output, row.raw_output, row.problems, row.confidence) == (
        SubtaskStatus.SUCCEEDED,
        "five",
        "RESULT: five",
        ["guessed"],
        -0.25,
    )
    call = session.scalars(select(ModelCall).where(ModelCall.idempotency_key == "call:a")).one()
    assert (call.status, call.tokens_in, call.tokens_out, call.cost_usd, call.bytes_sent) == (
        CallStatus.OK,
        40,
        8,
        0.003,
        120,
    )
    assert (call.gpu_cost_usd, call.estimated_cost_usd, call.latency_ms) == (0.0005, 0.01, 12.5)
    request = RequestRepository(session).get(request_row.id)
    assert request is not None
    assert (request.cost_usd, request.slm_steps, request.llm_steps) == (0.003, 1, 0)


def test_completion_of_a_lost_attempt_is_discarded_but_paid(session: Session, request_row: Request) -> None:
    _, step = _steps(session, request_row)
    assert claim_and_read(session, step.id, Executor.SLM, _stale()) is not None
    _start(session, request_row, step, "call:late")
    SubtaskRepository(session).fail(step.id, "given up")  # another attempt finished the step first
    assert _complete(session, request_row, step, "call:late") == (False, True)
    session.expire_all()
    call = session.scalars(select(ModelCall).where(ModelCall.idempotency_key == "call:late")).one()
    assert (call.status, call.cost_usd) == (CallStatus.DISCARDED, 0.003)
    request = RequestRepository(session).get(request_row.id)
    assert request is not None
    assert (request.cost_usd, request.slm_steps) == (0.003, 0)  # paid, not counted as a step


def test_each_is_one_statement_on_postgres(session: Session, request_row: Request) -> None:
    _, step = _steps(session, request_row)
    postgres = session.get_bind().dialect.name == "postgresql"
    with counting(session.get_bind().engine) as counter:  # type: ignore[union-attr]
        assert claim_and_read(session, step.id, Executor.SLM, _stale()) is not None
    claim = counter.counts.total_statements
    _start(session, request_row, step, "call:n")
    with counting(session.get_bind().engine) as counter:  # type: ignore[union-attr]
        assert _complete(session, request_row, step, "call:n") == (True, True)
    completion = counter.counts.total_statements
    assert (claim, completion) == ((1, 1) if postgres else (3, 3))
