"""Subtasks: the steps a decision assigns to an executor."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import Executor, RequestStatus, SubtaskStatus
from hera_router.db.models import Request, Subtask
from hera_router.db.repositories._dml import guarded_update, insert_if_absent, rows_changed, run_update, table_of

_SUBTASKS = table_of(Subtask)

_FIND = select(_SUBTASKS.c.id, _SUBTASKS.c.executor).where(
    _SUBTASKS.c.request_id == bindparam("request_id"),
    _SUBTASKS.c.seq == bindparam("seq"),
    _SUBTASKS.c.part == bindparam("part"),
)
_BY_KEY = select(Subtask).where(
    Subtask.request_id == bindparam("request_id"), Subtask.seq == bindparam("seq"), Subtask.part == bindparam("part")
)
CLAIMED_COLUMNS = ("id", "request_id", "seq", "part", "text", "branch", "attempts", "executor", "status")
CLAIM = (
    update(_SUBTASKS)
    .where(
        _SUBTASKS.c.id == bindparam("w_id"),
        _SUBTASKS.c.executor == bindparam("w_executor"),
        or_(
            _SUBTASKS.c.status == SubtaskStatus.PENDING,
            and_(_SUBTASKS.c.status == SubtaskStatus.RUNNING, _SUBTASKS.c.updated_at < bindparam("stale_before")),
        ),
    )
    .values(
        status=SubtaskStatus.RUNNING,
        attempts=_SUBTASKS.c.attempts + 1,
        updated_at=bindparam("now"),
        claimed_by=bindparam("claimed_by"),
    )
    .returning(*(_SUBTASKS.c[column] for column in CLAIMED_COLUMNS))
)
CLAIM_ON_TIER = CLAIM.where(_SUBTASKS.c.tier == bindparam("w_tier"))
"""A tier's run message claims the step only while the step is on that tier (not after it climbed)."""
STEP_COLUMNS = (
    "id",
    "seq",
    "part",
    "parent_id",
    "executor",
    "text",
    "output",
    "next_subtask",
    "status",
    "confidence",
    "tier",
)
_STEPS = (
    select(*(_SUBTASKS.c[column] for column in STEP_COLUMNS))
    .where(_SUBTASKS.c.request_id == bindparam("request_id"))
    .order_by(_SUBTASKS.c.seq, _SUBTASKS.c.part)
)
_REQUESTS = table_of(Request)
_LIMIT_COLUMNS = ("tenant_id", "cost_usd", "cost_cap_usd", "latency_budget_s", "created_at", "metadata")
"""What the router's budget and SLA checks read of the request (``pipeline/budgets.py``), and its
metadata (a plan node's position in its graph, ``routing.base.GraphPosition``)."""
_REQUEST_AND_STEPS = (
    select(
        _REQUESTS.c.status.label("request_status"),
        _REQUESTS.c.current_seq,
        _REQUESTS.c.policy,
        _REQUESTS.c.input,
        *(_REQUESTS.c[column].label(f"request_{column}") for column in _LIMIT_COLUMNS),
        *(_SUBTASKS.c[column] for column in STEP_COLUMNS),
    )
    .select_from(_REQUESTS.outerjoin(_SUBTASKS, _SUBTASKS.c.request_id == _REQUESTS.c.id))
    .where(_REQUESTS.c.id == bindparam("request_id"))
    .order_by(_SUBTASKS.c.seq, _SUBTASKS.c.part)
)


class RequestState(NamedTuple):
    """What the router reads of a request besides its steps."""

    status: RequestStatus
    current_seq: int
    policy: str
    input: str
    tenant_id: uuid.UUID | None = None
    cost_usd: float = 0.0
    cost_cap_usd: float | None = None
    latency_budget_s: float | None = None
    created_at: datetime | None = None
    meta: dict[str, Any] | None = None


class SubtaskRepository:
    """Subtasks keyed by (request, seq, part); writes are idempotent, transitions guarded."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_id(
        self,
        *,
        request_id: uuid.UUID,
        seq: int,
        executor: Executor,
        branch: str,
        text: str,
        part: int = 0,
        parent_id: uuid.UUID | None = None,
        tier: str | None = None,
    ) -> tuple[uuid.UUID, Executor]:
        """Create the subtask, or find the existing one for (request, seq, part); ``(id, executor)``.

        The new row's id comes back from the INSERT itself (the hot path). A redelivered router task
        re-running the same step gets the row the first copy wrote, whatever it holds now (then the
        executor may differ, e.g. after a fallback); the caller's guarded transition then decides
        whether to proceed.
        """
        inserted = insert_if_absent(
            self.session,
            Subtask,
            {
                "request_id": request_id,
                "seq": seq,
                "part": part,
                "executor": executor,
                "branch": branch,
                "text": text,
                "parent_id": parent_id,
                "tier": tier,
            },
            ("request_id", "seq", "part"),
            returning=(Subtask.id,),
        )
        if inserted is not None:
            return inserted[0], executor
        row = self.session.execute(_FIND, {"request_id": request_id, "seq": seq, "part": part}).one()
        return row.id, row.executor

    def claim(
        self,
        subtask_id: uuid.UUID,
        executor: Executor,
        stale_before: datetime,
        claimed_by: str | None = None,
        *,
        tier: str | None = None,
    ) -> Row[Any] | None:
        """Take the subtask for a run on ``executor``: ``pending``, or ``running`` but untouched since
        ``stale_before`` (its worker is gone). One guarded UPDATE that counts the attempt and returns
        what the run needs (id, request_id, seq, part, text, branch, attempts, executor, status);
        None if it is done, running elsewhere, or now belongs to the other executor."""
        parameters = {
            "w_id": subtask_id,
            "w_executor": executor,
            "stale_before": stale_before,
            "now": utcnow(),
            "claimed_by": claimed_by,
        }
        if tier is not None:
            return self.session.execute(CLAIM_ON_TIER, {**parameters, "w_tier": tier}).one_or_none()
        return self.session.execute(CLAIM, parameters).one_or_none()

    def touch_running(self, subtask_ids: Collection[uuid.UUID]) -> None:
        """The claimer is still on these steps (its heartbeat): bump ``updated_at`` of those running."""
        self.session.execute(
            update(Subtask)
            .where(Subtask.id.in_(list(subtask_ids)), Subtask.status == SubtaskStatus.RUNNING)
            .values(updated_at=utcnow())
        )

    def get(self, subtask_id: uuid.UUID) -> Subtask | None:
        return self.session.get(Subtask, subtask_id)

    def by_key(self, request_id: uuid.UUID, seq: int, part: int = 0) -> Subtask | None:
        return self.session.scalars(_BY_KEY, {"request_id": request_id, "seq": seq, "part": part}).one_or_none()

    def has_parts(self, subtask_id: uuid.UUID) -> bool:
        """Whether the subtask was decomposed (other subtasks name it as their parent)."""
        return bool(self.session.scalar(select(exists().where(Subtask.parent_id == subtask_id))))

    def list_for_request(self, request_id: uuid.UUID) -> Sequence[Subtask]:
        """The request's subtasks in execution order: the history the agent prompt is built from."""
        return self.session.scalars(
            select(Subtask).where(Subtask.request_id == request_id).order_by(Subtask.seq, Subtask.part)
        ).all()

    def steps_for_request(self, request_id: uuid.UUID) -> Sequence[Row[Any]]:
        """The request's subtasks in execution order, only what the hops read (id, seq, part,
        parent_id, executor, text, output, next_subtask, status, confidence): no ORM objects and no
        raw outputs, for the router's and the claim's read of the history."""
        return self.session.execute(_STEPS, {"request_id": request_id}).all()

    def request_and_steps(self, request_id: uuid.UUID) -> tuple[RequestState | None, list[Row[Any]]]:
        """The request's state and its steps (as :meth:`steps_for_request`) in one statement, one
        snapshot: the router's read on every hop. ``(None, [])`` if there is no such request."""
        rows = self.session.execute(_REQUEST_AND_STEPS, {"request_id": request_id}).all()
        if not rows:
            return None, []
        first = rows[0]
        state = RequestState(
            first.request_status,
            first.current_seq,
            first.policy,
            first.input,
            *(getattr(first, f"request_{column}") for column in _LIMIT_COLUMNS),
        )
        return state, [row for row in rows if row.id is not None]

    def list_for_requests(self, request_ids: Collection[uuid.UUID]) -> Sequence[Subtask]:
        """The subtasks of several requests, each request's in execution order."""
        if not request_ids:
            return []
        return self.session.scalars(
            select(Subtask)
            .where(Subtask.request_id.in_(list(request_ids)))
            .order_by(Subtask.request_id, Subtask.seq, Subtask.part)
        ).all()

    def transition(
        self,
        subtask_id: uuid.UUID,
        from_statuses: Collection[SubtaskStatus],
        to_status: SubtaskStatus,
        *,
        count_attempt: bool = False,
    ) -> bool:
        """Move to ``to_status`` if currently in ``from_statuses``; False means someone else did."""
        values: dict[str, Any] = {"status": to_status}
        if count_attempt:
            values["attempts"] = 1  # an increment
        return self._guarded_update(subtask_id, from_statuses, values)

    def reclaim_stale(self, subtask_id: uuid.UUID, stale_before: datetime) -> bool:
        """Take over a ``running`` subtask whose worker has not touched it since ``stale_before``.

        Counts an attempt and bumps ``updated_at``, so a second reclaimer (or the original worker
        coming back) loses the race. False if the subtask is not running or was touched recently.
        """
        result = self.session.execute(
            update(Subtask)
            .where(
                Subtask.id == subtask_id,
                Subtask.status == SubtaskStatus.RUNNING,
                Subtask.updated_at < stale_before,
            )
            .values(attempts=Subtask.attempts + 1)
        )
        return rows_changed(result) == 1

    def succeed(
        self,
        subtask_id: uuid.UUID,
        output: str,
        *,
        raw_output: str | None = None,
        next_subtask: str | None = None,
        problems: Sequence[str] = (),
        confidence: float | None = None,
    ) -> bool:
        """Store the outcome of a running subtask; False if it was not running."""
        return self._guarded_update(
            subtask_id,
            (SubtaskStatus.RUNNING,),
            {
                "status": SubtaskStatus.SUCCEEDED,
                "output": output,
                "raw_output": raw_output,
                "next_subtask": next_subtask,
                "problems": list(problems),
                "confidence": confidence,
            },
        )

    def move(
        self,
        subtask_id: uuid.UUID,
        source: tuple[Executor, str | None],
        target: tuple[Executor, str | None],
        *,
        escalate: bool = False,
    ) -> bool:
        """Move a step from one rung to another, ``(executor, model tier)`` each (the tier None in
        the two-tier case, no ``HERA_MODELS``), and back to ``pending``, so the run message queued
        for the new rung can claim it. The guard is the source's tier, or its executor without one.

        ``escalate``: the verify stage rejected the result (the step succeeded there; its answer is
        kept aside, branch ``verify``); otherwise an unfinished step moves (a fallback, a budget).
        False if it already moved or finished."""
        (from_executor, from_tier), (to_executor, to_tier) = source, target
        values: dict[str, Any] = {"tier": to_tier, "executor": to_executor, "status": SubtaskStatus.PENDING}
        statuses: tuple[SubtaskStatus, ...] = (SubtaskStatus.PENDING, SubtaskStatus.RUNNING)
        if escalate:
            subtask = self.get(subtask_id)
            if subtask is None:
                return False
            statuses = (SubtaskStatus.SUCCEEDED,)
            values.update(
                branch="verify",
                speculative_output=subtask.raw_output,
                output=None,
                raw_output=None,
                next_subtask=None,
                confidence=None,
            )
        guard: dict[str, Any] = {"tier": from_tier} if from_tier is not None else {"executor": from_executor}
        columns = tuple(sorted(values))
        statement = guarded_update(_SUBTASKS, ("id", *guard), columns, status_in=True)
        parameters: dict[str, Any] = {f"v_{key}": values[key] for key in columns}
        parameters.update({"w_id": subtask_id, "w_statuses": list(statuses)})
        parameters.update({f"w_{key}": value for key, value in guard.items()})
        return run_update(self.session, statement, parameters) == 1

    def fail(self, subtask_id: uuid.UUID, error: str) -> bool:
        """Fail a pending or running subtask; False if it had already finished."""
        return self._guarded_update(
            subtask_id,
            (SubtaskStatus.PENDING, SubtaskStatus.RUNNING),
            {"status": SubtaskStatus.FAILED, "error": error},
        )

    def _guarded_update(
        self,
        subtask_id: uuid.UUID,
        from_statuses: Collection[SubtaskStatus],
        values: dict[str, Any],
        executor: Executor | None = None,
    ) -> bool:
        increments = ("attempts",) if "attempts" in values else ()
        columns = tuple(sorted(key for key in values if key not in increments))
        where = ("id", "executor") if executor is not None else ("id",)
        statement = guarded_update(_SUBTASKS, where, columns, status_in=True, increments=increments)
        parameters: dict[str, Any] = {f"v_{key}": values[key] for key in columns}
        parameters.update({"w_id": subtask_id, "w_statuses": list(from_statuses)})
        if increments:
            parameters["i_attempts"] = values["attempts"]
        if executor is not None:
            parameters["w_executor"] = executor
        return run_update(self.session, statement, parameters) == 1
