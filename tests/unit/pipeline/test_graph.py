"""Plans with dependencies over SQLite with a recording broker: fan-out, fan-in, exactly once."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable

from hera_router.agent.plan import parse_plan, render_node_request, shapes
from hera_router.api.views import RequestViews, result_record
from hera_router.db.enums import RequestStatus
from hera_router.db.models import PlanNode, Request
from hera_router.db.repositories import RequestRepository
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope
from hera_router.pipeline.graph import GRAPH_REQUEST, node_request_id
from hera_router.pipeline.names import TaskName
from hera_router.simulator.generate import generate
from tests.integration.pipeline.helpers import assert_consistent_record
from tests.unit.pipeline.harness import Harness

SEED = 5
HarnessFactory = Callable[..., Harness]


def _graph(harness: Harness, request_id: uuid.UUID) -> tuple[Request, list[PlanNode], list[Request]]:
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        assert request is not None
        nodes = list(PlanNodeRepository(session).for_request(request_id))
        children = [RequestRepository(session).get(node_request_id(request_id, n.key)) for n in nodes]
        session.expunge_all()
        return request, nodes, [c for c in children if c is not None]


def test_a_plan_parses_only_when_well_formed() -> None:
    plan = parse_plan("[a] Find X.\n[b] Find Y.\n[final <- a, b] Combine: are (a) and (b) the same city?")
    assert plan is not None
    assert [(n.key, n.needs) for n in plan] == [("a", ()), ("b", ()), ("final", ("a", "b"))]
    shape = shapes(plan)
    assert (shape["a"].level, shape["a"].to_final, shape["a"].descendants) == (0, 1, 1)
    assert (shape["final"].level, shape["final"].to_final) == (1, 0)
    assert parse_plan("Find the director of the film Crimson Harbor.") is None  # a chain step
    assert parse_plan("[a] one node only") is None
    assert parse_plan("[a] x\n[b <- c] y") is None  # a need that is no earlier node
    assert parse_plan("[a] x\n[b] y") is None  # two sinks: no single final answer
    assert render_node_request("Combine: x?", [("a", "Lornhaven"), ("b", "12")]) == (
        "Combine: x? Given: (a) Lornhaven; (b) 12."
    )


def test_a_graph_request_fans_out_and_in_to_its_answer(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    tasks = generate("graph", 4, SEED)
    ids = harness.submit(tasks, "all-llm")
    harness.drain()
    for request_id, task in zip(ids, tasks, strict=True):
        request, nodes, children = _graph(harness, request_id)
        assert request.status is RequestStatus.SUCCEEDED, request.error
        assert {n.status for n in nodes} == {"succeeded"}
        assert len(nodes) == len(task.plan)
        assert len(children) == len(nodes)  # one node request per node
        assert all(c.status is RequestStatus.SUCCEEDED and c.meta[GRAPH_REQUEST] == str(request_id) for c in children)
        final = next(n for n in nodes if n.to_final == 0)
        assert request.final_answer == final.answer
        # The graph request carries its nodes' cost and steps, plus its own planning step.
        assert request.llm_steps == 1 + sum(c.llm_steps for c in children)
        assert request.cost_usd > sum(c.cost_usd for c in children) > 0
        for child in children:  # each node is an ordinary, consistent request record
            assert_consistent_record(harness.runtime.sessions, child.id)
        # The final node's depth: the planning step, then the longest part (graph-aware κ's ID).
        by_key = {c.meta["graph_node"]: c for c in children}
        parts = [by_key[n.key] for n in nodes if not n.needs]
        assert all(p.meta["graph"]["depth_steps"] == 1 for p in parts)
        assert by_key[final.key].meta["graph"]["depth_steps"] == 1 + max(p.current_seq + 1 for p in parts)
        assert by_key[final.key].meta["graph"]["to_final"] == 0
    # One plan message per request and node: each node started once.
    plans = Counter(m.task_id for m in harness.sent if m.task == TaskName.PLAN_STEP)
    assert all(count == 1 for count in plans.values())


def test_independent_nodes_are_queued_together_and_the_final_node_waits(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("graph", 1, SEED), "all-llm")
    # Deliver the planning step only (its plan hop and its run hop).
    harness.deliver(harness.queue.popleft())
    harness.deliver(harness.queue.popleft())
    _, nodes, children = _graph(harness, request_id)
    parts = [n for n in nodes if not n.needs]
    assert len(parts) >= 2
    assert {n.status for n in parts} == {"running"}  # all started at once
    assert len(children) == len(parts)
    assert [n.status for n in nodes if n.needs] == ["waiting"]
    assert sorted(m.kwargs["request_id"] for m in harness.queue) == sorted(str(c.id) for c in children)
    harness.drain()
    request, nodes, _ = _graph(harness, request_id)
    assert request.status is RequestStatus.SUCCEEDED


def test_every_graph_message_delivered_twice_changes_nothing(harness_factory: HarnessFactory) -> None:
    tasks = generate("graph", 3, SEED)
    once, twice = harness_factory(simulator={"seed": SEED}), harness_factory(simulator={"seed": SEED})
    ids_once, ids_twice = once.submit(tasks, "random"), twice.submit(tasks, "random")
    once.drain()
    twice.drain(twice=True)
    for a, b in zip(ids_once, ids_twice, strict=True):
        (ra, na, ca), (rb, nb, cb) = _graph(once, a), _graph(twice, b)
        assert (ra.status, ra.final_answer, ra.cost_usd, ra.slm_steps, ra.llm_steps) == (
            rb.status,
            rb.final_answer,
            rb.cost_usd,
            rb.slm_steps,
            rb.llm_steps,
        )
        assert [(n.key, n.status, n.answer) for n in na] == [(n.key, n.status, n.answer) for n in nb]
        assert len(ca) == len(cb)


def test_sequential_mode_runs_the_same_plan_one_node_at_a_time(harness_factory: HarnessFactory) -> None:
    tasks = generate("graph", 2, SEED)
    parallel, sequential = (
        harness_factory(simulator={"seed": SEED}),
        harness_factory(simulator={"seed": SEED}, graph_sequential=True),
    )
    ids_p, ids_s = parallel.submit(tasks, "all-llm"), sequential.submit(tasks, "all-llm")
    parallel.drain()
    sequential.drain()
    for a, b in zip(ids_p, ids_s, strict=True):
        (ra, na, _), (rb, nb, _) = _graph(parallel, a), _graph(sequential, b)
        assert ra.final_answer == rb.final_answer
        assert [(n.key, n.answer) for n in na] == [(n.key, n.answer) for n in nb]
        # Sequential: each node starts after the one before it finished.
        for earlier, later in itertools.pairwise(nb):
            assert earlier.finished_at is not None
            assert later.started_at is not None
            assert later.started_at >= earlier.finished_at


def test_a_failed_node_fails_its_graph(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, reconcile_after_s=0.001, lost_after_s=0.001)
    [request_id] = harness.submit(generate("graph", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())
    harness.deliver(harness.queue.popleft())
    _, _, children = _graph(harness, request_id)
    with session_scope(harness.runtime.sessions) as session:
        RequestRepository(session).fail(children[0].id, "the edge said no")
    harness.pipeline.reconcile()
    request, nodes, _ = _graph(harness, request_id)
    assert request.status is RequestStatus.FAILED
    assert "the edge said no" in (request.error or "")
    assert "failed" in {n.status for n in nodes}


def test_the_request_view_shows_the_graph_what_ran_where_and_when(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("graph", 1, SEED), "random")
    harness.drain()
    request, nodes, _ = _graph(harness, request_id)
    detail = RequestViews(harness.runtime.sessions).request_detail(request.tenant_id, request_id)
    assert detail is not None
    assert [n.key for n in detail.graph] == [n.key for n in nodes]
    final = detail.graph[-1]
    assert final.needs == [n.key for n in nodes if not n.needs]
    assert final.answer == detail.final_answer
    for node in detail.graph:
        assert node.steps, node.key
        assert node.slm_steps + node.llm_steps == len([s for s in node.steps if s.part == 0])
        assert node.started_at is not None
        assert node.finished_at is not None
        assert all(node.started_at <= s.started_at <= s.finished_at <= node.finished_at for s in node.steps)
    # The final node starts only after every node it needs has its answer.
    needed = [n for n in detail.graph if n.key in final.needs]
    assert final.started_at >= max(n.finished_at for n in needed)  # type: ignore[operator,type-var]
    with session_scope(harness.runtime.sessions) as session:
        row = RequestRepository(session).get(request_id)
        assert row is not None
        record = result_record(row, graph=PlanNodeRepository(session).for_requests([request_id])[request_id])
    assert [n["key"] for n in record["graph"]] == [n.key for n in nodes]


def test_cancelling_a_graph_request_cancels_its_node_requests(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("graph", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())
    harness.deliver(harness.queue.popleft())  # the planning step: its parts are queued
    _, _, children = _graph(harness, request_id)
    assert children
    assert {c.status for c in children} == {RequestStatus.QUEUED}
    harness.deliver(harness.queue.popleft())  # one part's router hop: that node request is running
    with session_scope(harness.runtime.sessions) as session:
        assert RequestRepository(session).cancel(request_id, "cancelled by the client")
    request, nodes, children = _graph(harness, request_id)
    assert request.status is RequestStatus.CANCELLED
    assert {c.status for c in children} == {RequestStatus.CANCELLED}
    assert all(c.error == f"cancelled with its graph request {request_id}" for c in children)
    harness.drain()  # what was queued finds its request cancelled: nothing runs, nothing starts
    request, nodes, children = _graph(harness, request_id)
    assert request.status is RequestStatus.CANCELLED
    assert {c.status for c in children} == {RequestStatus.CANCELLED}
    assert [n.status for n in nodes if n.needs] == ["waiting"]  # the combining node never started
    with session_scope(harness.runtime.sessions) as session:
        assert not RequestRepository(session).cancel(request_id, "again")  # a repeat changes nothing


def test_cancelling_a_batch_cancels_the_node_requests_of_its_graph_requests(harness_factory: HarnessFactory) -> None:
    from hera_router.db.repositories import BatchRepository

    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("graph", 1, SEED), "all-llm")
    with session_scope(harness.runtime.sessions) as session:
        request = RequestRepository(session).get(request_id)
        assert request is not None
        batch = BatchRepository(session).create(tenant_id=request.tenant_id, policy="all-llm", name="b", meta={})
        request.batch_id = batch.id
        batch_id = batch.id
    harness.deliver(harness.queue.popleft())
    harness.deliver(harness.queue.popleft())
    with session_scope(harness.runtime.sessions) as session:
        assert BatchRepository(session).cancel(batch_id) == 1  # the graph request (its nodes have no batch)
    _, _, children = _graph(harness, request_id)
    assert children
    assert {c.status for c in children} == {RequestStatus.CANCELLED}


def test_node_requests_are_left_out_of_the_tenants_listing_unless_asked(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    chain = generate("lookup", 1, SEED)
    ids = harness.submit([*generate("graph", 1, SEED), *chain], "all-llm")
    harness.drain()
    _, nodes, children = _graph(harness, ids[0])
    assert len(children) == len(nodes) >= 3
    with session_scope(harness.runtime.sessions) as session:
        tenant_id = RequestRepository(session).get(ids[0]).tenant_id  # type: ignore[union-attr]
        listed = {r.id for r in RequestRepository(session).page_for_tenant(tenant_id, include_nodes=False)}
        everything = {r.id for r in RequestRepository(session).page_for_tenant(tenant_id)}
    assert listed == set(ids)  # the graph request and the chain, not the nodes
    assert everything == set(ids) | {c.id for c in children}
    view = RequestViews(harness.runtime.sessions).request_detail(tenant_id, ids[0])
    assert view is not None
    assert {n.request_id for n in view.graph or []} == {c.id for c in children}  # the graph's view links them
