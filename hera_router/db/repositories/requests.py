"""Agent requests: creation, guarded state transitions, progress and the reconciler's scan."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import ACTIVE_REQUEST_STATUSES, RequestStatus
from hera_router.db.models import PlanNode, Request
from hera_router.db.repositories._dml import guarded_update, rows_changed, run_update, table_of

ACTIVE_STATUSES: tuple[RequestStatus, ...] = tuple(sorted(ACTIVE_REQUEST_STATUSES))

_REQUESTS = table_of(Request)
STATE_COLUMNS = ("id", "status", "current_seq", "policy", "input", "tenant_id")
_STATE = select(*(_REQUESTS.c[column] for column in STATE_COLUMNS)).where(_REQUESTS.c.id == bindparam("id"))
_TOUCH = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("w_id"))
    .values(heartbeat_at=bindparam("now"))
    .returning(*(_REQUESTS.c[column] for column in STATE_COLUMNS))
)
_ADVANCE = guarded_update(_REQUESTS, ("id", "current_seq", "status"), ("current_seq",))
_USAGE = guarded_update(_REQUESTS, ("id",), increments=("cost_usd", "slm_steps", "llm_steps"))


class RequestRepository:
    """Requests. State changes are conditional UPDATEs, never read-modify-write in Python.

    Two copies of a task (a redelivery while the first still runs) may race on the same request;
    only one UPDATE can match the expected old state, and the loser sees False and stops.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        tenant_id: uuid.UUID,
        input: str,
        policy: str,
        priority: int = 0,
        batch_id: uuid.UUID | None = None,
        custom_id: str | None = None,
        meta: dict[str, Any] | None = None,
        gold_answer: str | None = None,
        deadline: datetime | None = None,
        cost_cap_usd: float | None = None,
        latency_budget_s: float | None = None,
    ) -> Request:
        """A new request in ``queued``."""
        request = Request(
            cost_cap_usd=cost_cap_usd,
            latency_budget_s=latency_budget_s,
            tenant_id=tenant_id,
            input=input,
            policy=policy,
            priority=priority,
            batch_id=batch_id,
            custom_id=custom_id,
            meta=meta or {},
            gold_answer=gold_answer,
            deadline=deadline,
        )
        self.session.add(request)
        self.session.flush()
        return request

    def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert many new requests in one multi-row statement (a large batch file).

        Each row gives at least ``id``, ``tenant_id``, ``input`` and ``policy``; the column
        defaults fill in the rest, as for :meth:`add`. No ORM objects are built: 50,000 rows
        insert in seconds instead of minutes of per-row flushes.
        """
        if rows:
            self.session.execute(insert(Request), list(rows))

    def get(self, request_id: uuid.UUID) -> Request | None:
        return self.session.get(Request, request_id)

    def state(self, request_id: uuid.UUID) -> Row[Any] | None:
        """What the router needs of the request (id, status, current_seq, policy, input), read as
        one row without building an ORM object (the hot path)."""
        return self.session.execute(_STATE, {"id": request_id}).one_or_none()

    def list_by_ids(self, request_ids: Collection[uuid.UUID]) -> Sequence[Request]:
        """The given requests (missing ids are skipped), oldest first."""
        if not request_ids:
            return []
        return self.session.scalars(
            select(Request).where(Request.id.in_(list(request_ids))).order_by(Request.created_at, Request.id)
        ).all()

    def list_for_batch(self, batch_id: uuid.UUID) -> Sequence[Request]:
        return self.session.scalars(
            select(Request).where(Request.batch_id == batch_id).order_by(Request.created_at, Request.id)
        ).all()

    def get_for_tenant(self, request_id: uuid.UUID, tenant_id: uuid.UUID) -> Request | None:
        """The request, or None if it does not exist or belongs to another tenant (the API answers
        both with 404, so a tenant cannot probe for other tenants' ids)."""
        return self.session.scalars(
            select(Request).where(Request.id == request_id, Request.tenant_id == tenant_id)
        ).one_or_none()

    def page_for_batch(
        self,
        batch_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 500,
    ) -> Sequence[Request]:
        """Up to ``limit`` requests of the batch in submission order, after the ``(created_at, id)``
        of the last row of the previous page.

        Keyset, not OFFSET: streaming a large batch's results stays one index range scan per page,
        and rows added or cancelled meanwhile neither repeat nor vanish from the walk.
        """
        statement = select(Request).where(Request.batch_id == batch_id)
        if after is not None:
            statement = statement.where(tuple_(Request.created_at, Request.id) > tuple_(*after))
        return self.session.scalars(statement.order_by(Request.created_at, Request.id).limit(limit)).all()

    def page_for_tenant(
        self,
        tenant_id: uuid.UUID,
        *,
        before: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 50,
        statuses: Collection[RequestStatus] = (),
        batch_id: uuid.UUID | None = None,
        include_nodes: bool = True,
    ) -> Sequence[Request]:
        """The tenant's requests, newest first, older than the ``(created_at, id)`` cursor; without
        ``include_nodes``, not the node requests of plans with dependencies (``pipeline/graph.py``:
        the requests a ``plan_nodes`` row points at; their graph request's view links them)."""
        statement = select(Request).where(Request.tenant_id == tenant_id)
        if not include_nodes:
            statement = statement.where(~exists().where(PlanNode.child_id == Request.id))
        if statuses:
            statement = statement.where(Request.status.in_(list(statuses)))
        if batch_id is not None:
            statement = statement.where(Request.batch_id == batch_id)
        if before is not None:
            statement = statement.where(tuple_(Request.created_at, Request.id) < tuple_(*before))
        return self.session.scalars(statement.order_by(Request.created_at.desc(), Request.id.desc()).limit(limit)).all()

    def cancel(self, request_id: uuid.UUID, reason: str) -> bool:
        """Cancel a queued or running request with ``reason`` as its error; False if it had
        already finished. Workers see the terminal status at their next guarded transition. A graph
        request's active node requests are cancelled with it (:meth:`cancel_nodes`)."""
        cancelled = self._guarded_update(
            request_id, ACTIVE_STATUSES, {"status": RequestStatus.CANCELLED, "error": reason}
        )
        if cancelled:
            self.cancel_nodes([request_id])
        return cancelled

    def cancel_nodes(self, request_ids: Collection[uuid.UUID]) -> int:
        """Cancel the queued or running node requests of the graph requests among ``request_ids``
        (``pipeline/graph.py``), and theirs for a plan inside a node; how many.

        Call it after the graph requests' own update in the same transaction: that update holds their
        row locks, so a fan-in (which locks the graph row first) either committed before, and the
        node it started is found here, or runs after and finds the graph cancelled (it starts nothing)."""
        cancelled, frontier, seen = 0, list(request_ids), set(request_ids)
        while frontier:
            rows = self.session.execute(
                select(PlanNode.request_id, PlanNode.child_id).where(
                    PlanNode.request_id.in_(frontier), PlanNode.child_id.is_not(None)
                )
            ).all()
            children: list[uuid.UUID] = []
            for graph, child in rows:
                if child is None or child in seen:
                    continue
                seen.add(child)
                children.append(child)
                values = {"status": RequestStatus.CANCELLED, "error": f"cancelled with its graph request {graph}"}
                cancelled += self._guarded_update(child, ACTIVE_STATUSES, values)
            frontier = children
        return cancelled

    def transition(
        self,
        request_id: uuid.UUID,
        from_statuses: Collection[RequestStatus],
        to_status: RequestStatus,
        *,
        count_attempt: bool = False,
    ) -> bool:
        """Move the request to ``to_status`` if it is in one of ``from_statuses``.

        Returns False when no row changed: the request is missing or already elsewhere, which for
        a task means "a duplicate delivery; do nothing". ``count_attempt`` increments
        ``attempts`` in the same statement (a task starting work).
        """
        values: dict[str, Any] = {"status": to_status}
        if count_attempt:
            values["attempts"] = 1  # an increment
        return self._guarded_update(request_id, from_statuses, values)

    def succeed(self, request_id: uuid.UUID, final_answer: str) -> bool:
        """Finish a running request with its answer; False if it was not running."""
        return self._guarded_update(
            request_id,
            (RequestStatus.RUNNING,),
            {"status": RequestStatus.SUCCEEDED, "final_answer": final_answer, "error": None},
        )

    def fail(
        self,
        request_id: uuid.UUID,
        error: str,
        from_statuses: Collection[RequestStatus] = ACTIVE_STATUSES,
    ) -> bool:
        """Fail an active request with a readable ``error``; False if it was already finished."""
        return self._guarded_update(request_id, from_statuses, {"status": RequestStatus.FAILED, "error": error})

    def advance_seq(self, request_id: uuid.UUID, from_seq: int, to_seq: int) -> bool:
        """Move ``current_seq`` from ``from_seq`` to ``to_seq`` (a span may skip several steps).

        False if the request is not at ``from_seq`` (the step was already planned) or not running.
        """
        parameters = {
            "w_id": request_id,
            "w_current_seq": from_seq,
            "w_status": RequestStatus.RUNNING,
            "v_current_seq": to_seq,
        }
        return run_update(self.session, _ADVANCE, parameters) == 1

    def touch(self, request_id: uuid.UUID) -> Row[Any] | None:
        """Read the request's state (as :meth:`state`) and record a worker's heartbeat on it in one
        statement (the execution hop's claim); a heartbeat on a finished request is harmless,
        nothing reads it there."""
        return self.session.execute(_TOUCH, {"w_id": request_id, "now": utcnow()}).one_or_none()

    def heartbeat(self, request_id: uuid.UUID) -> bool:
        """Record that a worker is still on this request (keeps the reconciler away)."""
        result = self.session.execute(
            update(Request)
            .where(Request.id == request_id, Request.status.in_(ACTIVE_STATUSES))
            .values(heartbeat_at=utcnow())
        )
        return rows_changed(result) == 1

    def add_usage(self, request_id: uuid.UUID, *, cost_usd: float, slm_steps: int = 0, llm_steps: int = 0) -> None:
        """Add to the request's totals atomically (``SET x = x + n``, safe under concurrency).

        Not idempotent by itself: call it in the transaction that recorded the model call, and only
        when :meth:`ModelCallRepository.finish` recorded the call's outcome (returned True).
        """
        parameters = {"w_id": request_id, "i_cost_usd": cost_usd, "i_slm_steps": slm_steps, "i_llm_steps": llm_steps}
        run_update(self.session, _USAGE, parameters)

    def stale(self, older_than: datetime, limit: int = 100) -> Sequence[Request]:
        """Active requests with no progress and no heartbeat since ``older_than``, oldest first.

        These are the ones whose message the broker lost or whose worker died; the reconciler
        re-drives them from the database.
        """
        return self.session.scalars(
            select(Request)
            .where(
                Request.status.in_(ACTIVE_STATUSES),
                Request.updated_at < older_than,
                or_(Request.heartbeat_at.is_(None), Request.heartbeat_at < older_than),
            )
            .order_by(Request.updated_at)
            .limit(limit)
        ).all()

    def count_by_status(self) -> dict[RequestStatus, int]:
        """Number of requests per status (metrics, ``hera-router status``)."""
        rows = self.session.execute(select(Request.status, func.count()).group_by(Request.status))
        return dict(rows.all())

    def oldest_queued_at(self) -> datetime | None:
        """Creation time of the oldest request still waiting for its first step, or None."""
        return self.session.scalar(select(func.min(Request.created_at)).where(Request.status == RequestStatus.QUEUED))

    def _guarded_update(
        self,
        request_id: uuid.UUID,
        from_statuses: Collection[RequestStatus],
        values: dict[str, Any],
    ) -> bool:
        increments = ("attempts",) if "attempts" in values else ()
        columns = tuple(sorted(key for key in values if key not in increments))
        statement = guarded_update(_REQUESTS, ("id",), columns, status_in=True, increments=increments)
        parameters: dict[str, Any] = {f"v_{key}": values[key] for key in columns}
        parameters.update({"w_id": request_id, "w_statuses": list(from_statuses)})
        if increments:
            parameters["i_attempts"] = values["attempts"]
        return run_update(self.session, statement, parameters) == 1
