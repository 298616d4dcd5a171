"""The execution hop's fixed statement sequences, one statement (one round trip) each on Postgres.

The claim (take the step, heartbeat the request, read the request's steps) and the completion's
bookkeeping (store the step's result, record the call's outcome, add its cost to the request) are
each a fixed sequence of guarded statements whose later parts depend only on whether the earlier
ones matched. On Postgres each is one data-modifying CTE statement: the sub-statements run on one
snapshot and either all take effect or none, exactly as the separate statements did inside the
hop's transaction. On SQLite (no data-modifying CTEs) the same calls run the repositories' separate
statements; embedded SQLite has no network round trip to save.

Semantics kept from the separate statements:

- the claim's read of the steps sees the statement's snapshot, so the claimed step itself shows
  its status from before the claim (the hop reads only the other steps' results and the claimed
  row's own columns, which come from the claim's ``RETURNING``);
- the completion's call outcome is ``ok`` only if this attempt's result was kept (the step was
  still ``running``), ``discarded`` otherwise, and the request's totals grow only if the call's
  outcome was recorded now (a duplicate delivery adds nothing); the steps count only if kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, case, exists, select, true, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import CallStatus, Executor, SubtaskStatus
from hera_router.db.models import ModelCall, Request, Subtask
from hera_router.db.repositories._dml import table_of
from hera_router.db.repositories.model_calls import ModelCallRepository
from hera_router.db.repositories.requests import STATE_COLUMNS, RequestRepository
from hera_router.db.repositories.subtasks import (
    CLAIM,
    CLAIM_ON_TIER,
    CLAIMED_COLUMNS,
    STEP_COLUMNS,
    SubtaskRepository,
)

_SUBTASKS = table_of(Subtask)
_REQUESTS = table_of(Request)
_CALLS = table_of(ModelCall)


def _claim_and_read(claim: Any) -> Any:
    claimed = claim.cte("claimed")
    touched = (
        update(_REQUESTS)
        .where(_REQUESTS.c.id == claimed.c.request_id)
        .values(heartbeat_at=bindparam("now"), updated_at=bindparam("now"))
        .returning(*(_REQUESTS.c[column] for column in STATE_COLUMNS))
        .cte("touched")
    )
    steps = _SUBTASKS.alias("steps")
    return (
        select(
            *(claimed.c[column].label(f"c_{column}") for column in CLAIMED_COLUMNS),
            *(touched.c[column].label(f"r_{column}") for column in STATE_COLUMNS),
            *(steps.c[column].label(f"s_{column}") for column in STEP_COLUMNS),
        )
        .select_from(claimed.outerjoin(touched, true()).outerjoin(steps, steps.c.request_id == claimed.c.request_id))
        .order_by(steps.c.seq, steps.c.part)
    )


_CLAIM_AND_READ = _claim_and_read(CLAIM)
_CLAIM_AND_READ_ON_TIER = _claim_and_read(CLAIM_ON_TIER)


class _Step(NamedTuple):
    """A step as :meth:`SubtaskRepository.steps_for_request` returns it."""

    id: uuid.UUID
    seq: int
    part: int
    parent_id: uuid.UUID | None
    executor: Executor
    text: str
    output: str | None
    next_subtask: str | None
    status: SubtaskStatus
    confidence: float | None
    tier: str | None


class _Claimed(NamedTuple):
    id: uuid.UUID
    request_id: uuid.UUID
    seq: int
    part: int
    text: str
    branch: str
    attempts: int
    executor: Executor
    status: SubtaskStatus


class _State(NamedTuple):
    id: uuid.UUID
    status: Any
    current_seq: int
    policy: str
    input: str
    tenant_id: uuid.UUID | None


class ClaimRead(NamedTuple):
    """What a claim took and read: the claimed row (as :meth:`SubtaskRepository.claim`), the
    request's state (as :meth:`RequestRepository.touch`; None if the request is gone) and the
    request's steps (as :meth:`SubtaskRepository.steps_for_request`)."""

    subtask: Any
    request: Any
    steps: Sequence[Any]


def claim_and_read(
    session: Session,
    subtask_id: uuid.UUID,
    executor: Executor,
    stale_before: datetime,
    claimed_by: str | None = None,
    *,
    tier: str | None = None,
) -> ClaimRead | None:
    """Claim the step (:meth:`SubtaskRepository.claim`), heartbeat its request and read its steps;
    None if the claim did not match (done, running elsewhere, on another executor or tier).

    One statement on Postgres; on other databases the three statements the repositories run."""
    if session.get_bind().dialect.name != "postgresql":
        subtasks = SubtaskRepository(session)
        subtask = subtasks.claim(subtask_id, executor, stale_before, claimed_by, tier=tier)
        if subtask is None:
            return None
        request = RequestRepository(session).touch(subtask.request_id)
        steps = subtasks.steps_for_request(subtask.request_id) if request is not None else []
        return ClaimRead(subtask, request, steps)
    now = utcnow()
    parameters: dict[str, Any] = {
        "w_id": subtask_id,
        "w_executor": executor,
        "stale_before": stale_before,
        "now": now,
        "claimed_by": claimed_by,
    }
    statement = _CLAIM_AND_READ
    if tier is not None:
        statement, parameters["w_tier"] = _CLAIM_AND_READ_ON_TIER, tier
    rows = session.execute(statement, parameters).all()
    if not rows:
        return None
    first = rows[0]
    state = None
    if first.r_id is not None:
        state = _State(*(getattr(first, f"r_{column}") for column in STATE_COLUMNS))
    return ClaimRead(
        _Claimed(*(getattr(first, f"c_{column}") for column in CLAIMED_COLUMNS)),
        state,
        [_Step(*(getattr(row, f"s_{column}") for column in STEP_COLUMNS)) for row in rows if row.s_id is not None],
    )


# -- the completion ------------------------------------------------------------------------------

_SUCCEED_COLUMNS = ("output", "raw_output", "next_subtask", "problems", "confidence")
_CALL_COLUMNS = (
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "error",
    "attempts",
    "backend",
    "model",
    "tokens_cost_usd",
    "gpu_cost_usd",
    "energy_cost_usd",
    "transfer_cost_usd",
    "bytes_sent",
)


def _completion() -> Any:
    # Every constant is a named parameter: SQLAlchemy's cached form of a statement with DML in
    # CTEs failed to re-supply anonymous literals (statuses, 0) on re-execution.
    kept = (
        update(_SUBTASKS)
        .where(
            _SUBTASKS.c.id == bindparam("p_subtask"),
            _SUBTASKS.c.status == bindparam("running", type_=_SUBTASKS.c.status.type),
        )
        .values(
            status=bindparam("succeeded", type_=_SUBTASKS.c.status.type),
            updated_at=bindparam("now"),
            **{column: bindparam(f"v_{column}", type_=_SUBTASKS.c[column].type) for column in _SUCCEED_COLUMNS},
        )
        .returning(_SUBTASKS.c.id)
        .cte("kept")
    )
    was_kept = exists(select(kept.c.id))
    recorded = (
        update(_CALLS)
        .where(
            _CALLS.c.idempotency_key == bindparam("p_call_key"),
            _CALLS.c.status == bindparam("started", type_=_CALLS.c.status.type),
        )
        .values(
            status=case(
                (was_kept, bindparam("ok", type_=_CALLS.c.status.type)),
                else_=bindparam("discarded", type_=_CALLS.c.status.type),
            ),
            **{column: bindparam(f"c_{column}", type_=_CALLS.c[column].type) for column in _CALL_COLUMNS},
        )
        .returning(_CALLS.c.id)
        .cte("recorded")
    )
    was_recorded = exists(select(recorded.c.id))
    steps = _REQUESTS.c.slm_steps.type

    def counted(name: str) -> Any:  # the step counts only if this attempt's result was kept
        return case((was_kept, bindparam(name, type_=steps)), else_=bindparam("none", type_=steps))

    usage = (
        update(_REQUESTS)
        .where(_REQUESTS.c.id == bindparam("p_request"), was_recorded)
        .values(
            updated_at=bindparam("now"),
            cost_usd=_REQUESTS.c.cost_usd + bindparam("cost", type_=_REQUESTS.c.cost_usd.type),
            slm_steps=_REQUESTS.c.slm_steps + counted("slm"),
            llm_steps=_REQUESTS.c.llm_steps + counted("llm"),
        )
        .returning(_REQUESTS.c.id)
        .cte("usage")
    )
    return select(was_kept.label("kept"), was_recorded.label("recorded"), exists(select(usage.c.id)).label("added"))


_COMPLETE = _completion()


class Completion(NamedTuple):
    kept: bool
    """The step was still running: this attempt's result is the step's."""
    recorded: bool
    """The call's outcome was recorded now (False: a duplicate delivery recorded it before)."""


def complete_call(
    session: Session,
    *,
    subtask_id: uuid.UUID,
    request_id: uuid.UUID,
    call_key: str,
    executor: Executor,
    output: str,
    raw_output: str | None,
    next_subtask: str | None,
    problems: Sequence[str],
    confidence: float | None,
    backend: str,
    model: str,
    tokens_in: int,
    tokens_out: int,
    latency_ms: float,
    cost_usd: float,
    attempts: int,
    components: Mapping[str, float],
) -> Completion:
    """Store a running step's result (:meth:`SubtaskRepository.succeed`), the call's outcome
    (:meth:`ModelCallRepository.finish`: ``ok`` if kept, else ``discarded``) and, if that outcome
    is new, the cost and step count on the request (:meth:`RequestRepository.add_usage`).

    One statement on Postgres; on other databases the three statements the repositories run."""
    if session.get_bind().dialect.name != "postgresql":
        kept = SubtaskRepository(session).succeed(
            subtask_id,
            output,
            raw_output=raw_output,
            next_subtask=next_subtask,
            problems=problems,
            confidence=confidence,
        )
        recorded = ModelCallRepository(session).finish(
            call_key,
            status=CallStatus.OK if kept else CallStatus.DISCARDED,
            backend=backend,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_ms=latency_ms,
            cost_usd=cost_usd,
            attempts=attempts,
            components=components,
        )
        if recorded:
            RequestRepository(session).add_usage(
                request_id,
                cost_usd=cost_usd,
                slm_steps=int(kept and executor is Executor.SLM),
                llm_steps=int(kept and executor is Executor.LLM),
            )
        return Completion(kept, recorded)
    call_values: dict[str, Any] = {
        "latency_ms": latency_ms,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": cost_usd,
        "error": None,
        "attempts": attempts,
        "backend": backend,
        "model": model,
        "tokens_cost_usd": 0.0,
        "gpu_cost_usd": 0.0,
        "energy_cost_usd": 0.0,
        "transfer_cost_usd": 0.0,
        "bytes_sent": 0,
    }
    unknown = set(components) - set(call_values)
    if unknown:  # pragma: no cover - cost_columns names exactly the columns above
        raise KeyError(f"unknown model call cost columns: {sorted(unknown)}")
    call_values.update(components)
    parameters: dict[str, Any] = {
        "p_subtask": subtask_id,
        "p_request": request_id,
        "p_call_key": call_key,
        "now": utcnow(),
        "v_output": output,
        "v_raw_output": raw_output,
        "v_next_subtask": next_subtask,
        "v_problems": list(problems),
        "v_confidence": confidence,
        "running": SubtaskStatus.RUNNING,
        "succeeded": SubtaskStatus.SUCCEEDED,
        "started": CallStatus.STARTED,
        "ok": CallStatus.OK,
        "discarded": CallStatus.DISCARDED,
        "cost": cost_usd,
        "none": 0,
        "slm": int(executor is Executor.SLM),
        "llm": int(executor is Executor.LLM),
    }
    parameters.update({f"c_{column}": value for column, value in call_values.items()})
    row: Row[Any] = session.execute(_COMPLETE, parameters).one()
    return Completion(bool(row.kept), bool(row.recorded))
