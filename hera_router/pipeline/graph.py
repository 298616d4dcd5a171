"""Fan-out and fan-in: a step whose ``NEXT:`` is a plan with dependencies (``agent/plan.py``).

The planning step's request (the *graph request*) stays ``running`` at its step while the plan
runs. Each node runs as a chain request of its own (a *node request*, id ``uuid5(graph, key)``),
through the same hops as any request: routed step by step, its steps on the edge or the cloud,
verified, recovered. What this module adds is only the two moves between them, both inside the
transaction of the hop that calls for them and both through the outbox:

- **fan-out** (``hand_on`` of the planning step): the plan's rows, then every node with no needs
  starts: its node request is written ``queued`` with its ``plan_step`` message;
- **fan-in** (``_finish`` of a node request): the node takes its answer, then every node whose
  needs all have answers starts (its request text carries them, ``render_node_request``); when
  the final node has its answer, the graph request succeeds with it and takes over the node
  requests' cost and step counts.

Exactly once, with Postgres as the truth: each move takes a row lock on the graph request first,
so the fan-ins of two nodes finishing together run one after the other and the second sees the
first's answer; each node moves waiting → running → succeeded by guarded updates, and a node
request's id and its ``plan_step`` task id are deterministic, so a redelivered or re-driven hop
finds its move made and queues nothing new. A worker killed mid fan-in rolls the whole
transaction back (the node request is still ``running`` at its last step), and the recovery hop
re-drives that step, whose completion runs the fan-in again.

A node request that fails fails the graph request (the reconciler's scan, ``graph_failures``);
the graph request itself is never re-driven once it fanned out (``waiting_graphs``).

``HERA_GRAPH_SEQUENTIAL`` starts one node at a time in plan order: the same plan and calls,
sequentially, which is what the wall-clock measurement compares with.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from hera_router.agent.plan import NodeShape, PlanNode, node_position, render_node_request, shapes
from hera_router.agent.scoring import score
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, RequestStatus
from hera_router.db.models import PlanNode as PlanNodeRow
from hera_router.db.models import Request
from hera_router.db.repositories import RequestRepository
from hera_router.db.repositories.plan_nodes import RUNNING, SUCCEEDED, WAITING, PlanNodeRepository
from hera_router.metrics import instruments as metrics
from hera_router.pipeline.services import Services
from hera_router.routing import steps

GRAPH_REQUEST = "graph_request"
"""Meta key of a node request: the id of the graph request it belongs to."""
GRAPH_NODE = "graph_node"
"""Meta key of a node request: its node's key."""
GRAPH_SHAPE = "graph"
"""Meta key of a node request: its node's place in the plan (what graph-aware κ reads)."""
_NAMESPACE = uuid.UUID("6b1f3c52-55e4-4a43-9f49-2f6d0b8f1c19")


def node_request_id(graph_id: uuid.UUID, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{graph_id}:{key}")


def is_node_request(request: Request) -> bool:
    return GRAPH_REQUEST in (request.meta or {})


def fan_out(
    services: Services, session: Session, request_id: uuid.UUID, seq: int, plan: list[PlanNode]
) -> list[uuid.UUID]:
    """Write the plan of step ``seq`` and start its ready nodes; the outbox rows queued."""
    nodes = PlanNodeRepository(session)
    graph = nodes.lock_graph(request_id)
    if graph is None or graph.status is not RequestStatus.RUNNING:
        return []
    shape = shapes(plan)
    nodes.add(
        [
            {
                "request_id": request_id,
                "key": node.key,
                "seq": seq,
                "text": node.text,
                "needs": list(node.needs),
                "level": shape[node.key].level,
                "to_final": shape[node.key].to_final,
                "descendants": shape[node.key].descendants,
                "status": WAITING,
            }
            for node in plan
        ]
    )
    return _start_ready(services, session, graph)


def node_finished(services: Services, session: Session, child: Request, answer: str) -> list[uuid.UUID]:
    """Fan-in after node request ``child`` succeeded with ``answer`` (in the same transaction)."""
    nodes = PlanNodeRepository(session)
    graph = nodes.lock_graph(uuid.UUID(str(child.meta[GRAPH_REQUEST])))
    node = nodes.by_child(child.id)
    if graph is None or node is None or not nodes.succeed(node.id, answer):
        return []  # not a node of a known graph, or its fan-in already ran
    if graph.status in TERMINAL_REQUEST_STATUSES:
        return []  # cancelled or failed meanwhile: nothing more starts
    rows = list(nodes.for_request(graph.id))
    if all(row.status == SUCCEEDED for row in rows):
        final = next(row for row in rows if row.to_final == 0)
        return _finish_graph(services, session, graph, final.answer or "")
    return _start_ready(services, session, graph, rows)


def _start_ready(
    services: Services, session: Session, graph: Request, rows: list[PlanNodeRow] | None = None
) -> list[uuid.UUID]:
    nodes = PlanNodeRepository(session)
    rows = list(nodes.for_request(graph.id)) if rows is None else rows
    by_key = {row.key: row for row in rows}
    done = {row.key for row in rows if row.status == SUCCEEDED}
    busy = any(row.status == RUNNING for row in rows)
    queued: list[uuid.UUID] = []
    for row in rows:
        if row.status != WAITING or not steps.ready(row.needs, done):
            continue
        if services.settings.graph_sequential and (busy or queued):
            break
        # Model steps on the longest path of results this node reads (the planning steps first).
        needs = [(by_key[need].depth_steps, _steps(session, by_key[need])) for need in row.needs]
        shape = NodeShape(level=row.level, to_final=row.to_final, descendants=row.descendants)
        position = node_position(row.seq, needs, shape, len(rows))
        depth = position["depth_steps"]
        child_id = node_request_id(graph.id, row.key)
        inputs = [(need, by_key[need].answer or "") for need in row.needs]
        meta: dict[str, Any] = {GRAPH_REQUEST: str(graph.id), GRAPH_NODE: row.key, GRAPH_SHAPE: position}
        # The request first (the node row points at it); a repeated fan-in finds both in place.
        nodes.add_child(child_id=child_id, parent=graph, input=render_node_request(row.text, inputs), meta=meta)
        if not nodes.start(row.id, child_id, depth):
            continue
        queued.append(services.queue_plan(session, child_id, 0))
    return queued


def _steps(session: Session, row: PlanNodeRow) -> int:
    """Model steps a finished node took (its request's last step + 1)."""
    child = session.get(Request, row.child_id) if row.child_id is not None else None
    return child.current_seq + 1 if child is not None else 1


def _finish_graph(services: Services, session: Session, graph: Request, answer: str) -> list[uuid.UUID]:
    requests = RequestRepository(session)
    cost, slm_steps, llm_steps = PlanNodeRepository(session).children_totals(graph.id)
    if not requests.succeed(graph.id, answer):
        return []
    requests.add_usage(graph.id, cost_usd=cost, slm_steps=slm_steps, llm_steps=llm_steps)
    if graph.gold_answer is not None:
        metric = str(graph.meta.get("metric", "entity"))  # evaluation.summary.DEFAULT_METRIC
        quality = score(metric, answer, graph.gold_answer)
        metrics.after_commit(session, lambda: metrics.record_gold_score(graph.policy, quality))
    if is_node_request(graph):  # a plan inside a node of another plan
        return node_finished(services, session, graph, answer)
    return []


def waiting_graphs(session: Session, request_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Graph requests among ``request_ids``: their progress is their nodes' (each re-driven as a
    request of its own); a failed node fails them (:func:`graph_failures`)."""
    return PlanNodeRepository(session).waiting_graphs(request_ids)


def graph_failures(session: Session, request_ids: list[uuid.UUID]) -> int:
    """Fail the graph requests among ``request_ids`` one of whose node requests failed; how many."""
    nodes = PlanNodeRepository(session)
    requests = RequestRepository(session)
    failed = 0
    for node, child in nodes.broken(request_ids):
        reason = steps.node_failed(node.key, child.error or child.status.value).reason
        nodes.fail(node.id, reason)
        failed += requests.fail(node.request_id, reason)
    return failed
