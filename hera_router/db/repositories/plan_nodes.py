"""Plan nodes: the rows of a step that fanned out, their guarded moves, and their child requests.

Every state change is a conditional UPDATE (waiting → running → succeeded | failed), so a
redelivered fan-out or fan-in finds the move already made and does nothing. The fan-in reads the
nodes after taking a row lock on the graph's request (:meth:`PlanNodeRepository.lock_graph`):
two nodes finishing at the same moment then see each other's result, one after the other, and
exactly one of them starts the node that needs both.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import RequestStatus
from hera_router.db.models import PlanNode, Request
from hera_router.db.repositories._dml import insert_if_absent, rows_changed

WAITING, RUNNING, SUCCEEDED, FAILED = "waiting", "running", "succeeded", "failed"


class PlanNodeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, values: Sequence[dict[str, Any]]) -> int:
        """Insert the plan's nodes (each ``request_id``, ``key`` ...); a key already there is kept."""
        return sum(bool(insert_if_absent(self.session, PlanNode, row, ("request_id", "key"))) for row in values)

    def lock_graph(self, request_id: uuid.UUID) -> Request | None:
        """The graph's request row, locked for the rest of the transaction (``FOR UPDATE`` on
        Postgres; on SQLite the write transaction already excludes every other writer)."""
        return self.session.scalars(
            select(Request).where(Request.id == request_id).with_for_update().execution_options(populate_existing=True)
        ).one_or_none()

    def for_request(self, request_id: uuid.UUID) -> Sequence[PlanNode]:
        return self.session.scalars(
            select(PlanNode)
            .where(PlanNode.request_id == request_id)
            .order_by(PlanNode.seq, PlanNode.created_at, PlanNode.key)
            .execution_options(populate_existing=True)
        ).all()

    def for_requests(self, request_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[PlanNode]]:
        """The nodes of each of ``request_ids`` that has a plan, in plan order (one query)."""
        found: dict[uuid.UUID, list[PlanNode]] = {}
        if not request_ids:
            return found
        rows = self.session.scalars(
            select(PlanNode)
            .where(PlanNode.request_id.in_(request_ids))
            .order_by(PlanNode.request_id, PlanNode.seq, PlanNode.created_at, PlanNode.key)
        )
        for row in rows:
            found.setdefault(row.request_id, []).append(row)
        return found

    def node_request_ids(self, request_ids: Collection[uuid.UUID]) -> list[uuid.UUID]:
        """The node requests of those of ``request_ids`` that fanned out (one level)."""
        if not request_ids:
            return []
        rows = self.session.scalars(
            select(PlanNode.child_id).where(PlanNode.request_id.in_(request_ids), PlanNode.child_id.is_not(None))
        )
        return [child for child in rows.all() if child is not None]

    def by_child(self, child_id: uuid.UUID) -> PlanNode | None:
        return self.session.scalars(select(PlanNode).where(PlanNode.child_id == child_id)).one_or_none()

    def start(self, node_id: uuid.UUID, child_id: uuid.UUID, depth_steps: int) -> bool:
        """waiting → running with the child request that runs it; False if it started already."""
        values = {"status": RUNNING, "child_id": child_id, "depth_steps": depth_steps, "started_at": utcnow()}
        return self._move(node_id, WAITING, values)

    def succeed(self, node_id: uuid.UUID, answer: str) -> bool:
        return self._move(node_id, RUNNING, {"status": SUCCEEDED, "answer": answer, "finished_at": utcnow()})

    def fail(self, node_id: uuid.UUID, reason: str) -> bool:
        return self._move(node_id, RUNNING, {"status": FAILED, "answer": reason, "finished_at": utcnow()})

    def _move(self, node_id: uuid.UUID, from_status: str, values: dict[str, Any]) -> bool:
        result = self.session.execute(
            update(PlanNode).where(PlanNode.id == node_id, PlanNode.status == from_status).values(**values)
        )
        return rows_changed(result) == 1

    def add_child(self, *, child_id: uuid.UUID, parent: Request, input: str, meta: dict[str, Any]) -> bool:
        """The request that runs one node: the graph's tenant, policy and priority; no batch (the
        graph's request is what the batch counts). False if it exists (a repeated fan-out)."""
        values = {
            "id": child_id,
            "tenant_id": parent.tenant_id,
            "input": input,
            "meta": meta,
            "policy": parent.policy,
            "priority": parent.priority,
            "status": RequestStatus.QUEUED,
        }
        return bool(insert_if_absent(self.session, Request, values, ("id",)))

    def waiting_graphs(self, request_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``request_ids`` that fanned out: their progress is their nodes', never theirs
        to re-drive. Whatever the nodes' statuses: the last fan-in finishes the graph request in
        its own transaction, so a graph request read as active a moment before that commit and
        whose nodes read as all done a moment after it is finished, not stalled."""
        if not request_ids:
            return set()
        rows = self.session.scalars(select(PlanNode.request_id).where(PlanNode.request_id.in_(request_ids)).distinct())
        return set(rows.all())

    def broken(self, request_ids: Collection[uuid.UUID]) -> list[tuple[PlanNode, Request]]:
        """Running nodes of ``request_ids`` whose child request failed or was cancelled."""
        if not request_ids:
            return []
        rows = self.session.execute(
            select(PlanNode, Request)
            .join(Request, Request.id == PlanNode.child_id)
            .where(
                PlanNode.request_id.in_(request_ids),
                PlanNode.status == RUNNING,
                Request.status.in_((RequestStatus.FAILED, RequestStatus.CANCELLED)),
            )
        )
        return [(node, child) for node, child in rows.all()]

    def children_totals(self, request_id: uuid.UUID) -> tuple[float, int, int]:
        """Cost and SLM/LLM steps of the graph's child requests (rolled up when it finishes)."""
        rows = self.session.execute(
            select(Request.cost_usd, Request.slm_steps, Request.llm_steps)
            .join(PlanNode, PlanNode.child_id == Request.id)
            .where(PlanNode.request_id == request_id)
        ).all()
        return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)
