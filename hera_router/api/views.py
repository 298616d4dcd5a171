"""The read side: what a client sees of its requests and batches, built from the repositories.

Every read is scoped to the caller's tenant; another tenant's object reads as absent (None), which
the routes answer with 404, so ids cannot be probed across tenants. No FastAPI here either: the
CLI's ``status`` and ``results`` can render the same views.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.schemas import (
    BatchStatus,
    DecisionView,
    ModelCallSummary,
    ModelCallView,
    NodeStepView,
    PlanNodeView,
    RejectedLine,
    RequestDetail,
    RoleUsage,
    SubtaskNode,
)
from hera_router.db.enums import CallStatus, ModelRole, RequestStatus
from hera_router.db.models import Batch, Decision, ModelCall, PlanNode, Request, Subtask
from hera_router.db.repositories import (
    BatchRepository,
    CostComponents,
    CostRepository,
    DecisionRepository,
    ModelCallRepository,
    RequestRepository,
    SubtaskRepository,
)
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope


class RequestViews:
    """Tenant-scoped reads of requests and batches."""

    def __init__(self, sessions: sessionmaker[Session], *, results_page_size: int = 500) -> None:
        self.sessions = sessions
        self.results_page_size = results_page_size

    def request_detail(self, tenant_id: uuid.UUID, request_id: uuid.UUID) -> RequestDetail | None:
        """The request with its subtask tree, decisions and model calls; None if not the tenant's."""
        with session_scope(self.sessions) as session:
            request = RequestRepository(session).get_for_tenant(request_id, tenant_id)
            if request is None:
                return None
            subtasks = SubtaskRepository(session).list_for_request(request_id)
            decisions = DecisionRepository(session).list_for_request(request_id)
            calls = ModelCallRepository(session).list_for_request(request_id)
            return RequestDetail(
                id=request.id,
                batch_id=request.batch_id,
                custom_id=request.custom_id,
                status=request.status,
                policy=request.policy,
                priority=request.priority,
                metadata=request.meta,
                input=request.input,
                final_answer=request.final_answer,
                error=request.error,
                gold_answer=request.gold_answer,
                cost_usd=request.cost_usd,
                slm_steps=request.slm_steps,
                llm_steps=request.llm_steps,
                current_seq=request.current_seq,
                attempts=request.attempts,
                created_at=request.created_at,
                updated_at=request.updated_at,
                subtasks=subtask_tree(subtasks),
                decisions=[_decision_view(decision) for decision in decisions],
                model_calls=summarise_calls(calls),
                graph=_graph_view(session, PlanNodeRepository(session).for_request(request_id)),
            )

    def batch_status(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> BatchStatus | None:
        """Progress counts and cost so far; None if the batch is not the tenant's."""
        with session_scope(self.sessions) as session:
            batches = BatchRepository(session)
            batch = batches.get(batch_id, tenant_id)
            if batch is None:
                return None
            progress = batches.progress(batch_id)
            return BatchStatus(
                id=batch.id,
                name=batch.name,
                policy=batch.policy,
                metadata=batch.meta,
                created_at=batch.created_at,
                accepted=batch.accepted,
                rejected=rejected_lines(batch),
                total=progress.total,
                done=progress.done,
                counts={status: progress.counts.get(status, 0) for status in RequestStatus},
                cost_usd=progress.cost_usd,
                slm_steps=progress.slm_steps,
                llm_steps=progress.llm_steps,
                cancelled=batch.cancelled_at is not None,
                cancelled_at=batch.cancelled_at,
            )

    def batch_results(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Iterator[str] | None:
        """The batch's results as JSONL lines (one per request, submission order), read page by
        page as the caller iterates; None if the batch is not the tenant's.

        The ownership check runs now, so the caller can answer 404 before streaming starts.
        """
        with session_scope(self.sessions) as session:
            if BatchRepository(session).get(batch_id, tenant_id) is None:
                return None
        return self._result_lines(batch_id)

    def _result_lines(self, batch_id: uuid.UUID) -> Iterator[str]:
        after: tuple[Any, uuid.UUID] | None = None
        while True:
            # A short transaction per page: a slow download must not hold one open for minutes.
            with session_scope(self.sessions) as session:
                page = RequestRepository(session).page_for_batch(batch_id, after=after, limit=self.results_page_size)
                ids = [request.id for request in page]
                costs = CostRepository(session).for_requests(ids)
                graphs = PlanNodeRepository(session).for_requests(ids)
                lines = [
                    json.dumps(
                        result_record(request, costs.get(request.id), graphs.get(request.id)), ensure_ascii=False
                    )
                    + "\n"
                    for request in page
                ]
            yield from lines
            if len(page) < self.results_page_size:
                return
            after = (page[-1].created_at, page[-1].id)


def result_record(
    request: Request, costs: CostComponents | None = None, graph: Sequence[PlanNode] | None = None
) -> dict[str, Any]:
    """One line of a batch's results file; ``costs`` adds the request's cost by component, ``graph``
    the plan's nodes (when it fanned out)."""
    record: dict[str, Any] = {
        "custom_id": request.custom_id,
        "request_id": str(request.id),
        "status": request.status.value,
        "final_answer": request.final_answer,
        "error": request.error,
        "cost_usd": request.cost_usd,
        "slm_steps": request.slm_steps,
        "llm_steps": request.llm_steps,
    }
    if request.gold_answer is not None:
        record["gold_answer"] = request.gold_answer
    if costs is not None:
        record["cost"] = costs.as_dict()
    if graph:
        record["graph"] = [
            {
                "key": node.key,
                "needs": list(node.needs),
                "status": node.status,
                "answer": node.answer,
                "request_id": None if node.child_id is None else str(node.child_id),
                "started_at": None if node.started_at is None else node.started_at.isoformat(),
                "finished_at": None if node.finished_at is None else node.finished_at.isoformat(),
            }
            for node in graph
        ]
    return record


def _graph_view(session: Session, nodes: Sequence[PlanNode]) -> list[PlanNodeView]:
    """The plan's nodes with where and when each node's steps ran (from the nodes' own requests)."""
    children = {r.id: r for r in RequestRepository(session).list_by_ids([n.child_id for n in nodes if n.child_id])}
    views = []
    for node in nodes:
        child = children.get(node.child_id) if node.child_id is not None else None
        steps = SubtaskRepository(session).list_for_request(child.id) if child is not None else []
        views.append(
            PlanNodeView(
                key=node.key,
                text=node.text,
                needs=list(node.needs),
                status=node.status,
                answer=node.answer,
                level=node.level,
                to_final=node.to_final,
                descendants=node.descendants,
                depth_steps=node.depth_steps,
                request_id=node.child_id,
                slm_steps=child.slm_steps if child is not None else 0,
                llm_steps=child.llm_steps if child is not None else 0,
                cost_usd=child.cost_usd if child is not None else 0.0,
                started_at=node.started_at,
                finished_at=node.finished_at,
                steps=[
                    NodeStepView(
                        seq=s.seq,
                        part=s.part,
                        executor=s.executor,
                        branch=s.branch,
                        status=s.status,
                        started_at=s.created_at,
                        finished_at=s.updated_at,
                    )
                    for s in steps
                ],
            )
        )
    return views


def rejected_lines(batch: Batch) -> list[RejectedLine]:
    return [
        RejectedLine(
            line=entry["line"],
            error=entry["error"],
            message=entry.get("message") or f"line {entry['line']}: {entry['error']}",
        )
        for entry in batch.rejected
    ]


def subtask_tree(subtasks: Sequence[Subtask]) -> list[SubtaskNode]:
    """Nest parts under the step they decompose; steps stay in (seq, part) order.

    A part whose parent is missing from ``subtasks`` (cannot happen with the cascade, but a view
    must not drop rows it was given) is shown at the top level.
    """
    nodes = {subtask.id: _subtask_node(subtask) for subtask in subtasks}
    roots: list[SubtaskNode] = []
    for subtask in subtasks:
        node = nodes[subtask.id]
        parent = nodes.get(subtask.parent_id) if subtask.parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)
    return roots


def summarise_calls(calls: Sequence[ModelCall]) -> ModelCallSummary:
    by_role = {role: RoleUsage() for role in ModelRole}
    for call in calls:
        usage = by_role[call.role]
        usage.calls += 1
        usage.tokens_in += call.tokens_in
        usage.tokens_out += call.tokens_out
        usage.cost_usd += call.cost_usd
        usage.latency_ms += call.latency_ms
    return ModelCallSummary(
        calls=len(calls),
        errors=sum(1 for call in calls if call.status is CallStatus.ERROR),
        unknown=sum(1 for call in calls if call.status is CallStatus.STARTED),
        unknown_cost_usd=sum(call.estimated_cost_usd for call in calls if call.status is CallStatus.STARTED),
        tokens_in=sum(call.tokens_in for call in calls),
        tokens_out=sum(call.tokens_out for call in calls),
        cost_usd=sum(call.cost_usd for call in calls),
        latency_ms=sum(call.latency_ms for call in calls),
        by_role=by_role,
        items=[_call_view(call) for call in calls],
        components={
            "tokens_usd": sum(call.tokens_cost_usd for call in calls),
            "gpu_usd": sum(call.gpu_cost_usd for call in calls),
            "energy_usd": sum(call.energy_cost_usd for call in calls),
            "transfer_usd": sum(call.transfer_cost_usd for call in calls),
        },
        cloud_tokens_usd=sum(call.tokens_cost_usd for call in calls if call.role is ModelRole.CLOUD),
    )


def _subtask_node(subtask: Subtask) -> SubtaskNode:
    return SubtaskNode(
        id=subtask.id,
        seq=subtask.seq,
        part=subtask.part,
        parent_id=subtask.parent_id,
        executor=subtask.executor,
        tier=subtask.tier,
        branch=subtask.branch,
        status=subtask.status,
        text=subtask.text,
        output=subtask.output,
        next_subtask=subtask.next_subtask,
        error=subtask.error,
        attempts=subtask.attempts,
        problems=list(subtask.problems),
    )


def _decision_view(decision: Decision) -> DecisionView:
    return DecisionView(
        seq=decision.seq,
        policy=decision.policy,
        executor=decision.executor,
        branch=decision.branch,
        span=decision.span,
        scores=decision.scores,
        kappa=decision.kappa,
        estimator_versions=decision.estimator_versions,
        elapsed_ms=decision.elapsed_ms,
        fallback_reason=decision.fallback_reason,
        created_at=decision.created_at,
    )


def _call_view(call: ModelCall) -> ModelCallView:
    return ModelCallView(
        subtask_id=call.subtask_id,
        backend=call.backend,
        model=call.model,
        role=call.role,
        tier=call.tier,
        status=call.status,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        latency_ms=call.latency_ms,
        cost_usd=call.cost_usd,
        attempts=call.attempts,
        error=call.error,
        estimated_cost_usd=call.estimated_cost_usd,
        tokens_cost_usd=call.tokens_cost_usd,
        gpu_cost_usd=call.gpu_cost_usd,
        energy_cost_usd=call.energy_cost_usd,
        transfer_cost_usd=call.transfer_cost_usd,
        bytes_sent=call.bytes_sent,
    )
