"""The hops of the pipeline, one behaviour at a time, over SQLite with a recording broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import text

from hera_router.backends.base import BackendRole, BackendUnavailable, ModelBackend
from hera_router.config import RoutingSettings, Settings
from hera_router.db.enums import CallStatus, Executor, RequestStatus, SubtaskStatus
from hera_router.db.repositories import (
    DecisionRepository,
    ModelCallRepository,
    OutboxRepository,
    RequestRepository,
    SubtaskRepository,
)
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName, plan_task_id, run_task_id
from hera_router.pipeline.services import default_backend_factory
from hera_router.routing.base import Decision, PolicyBase, RoutingContext
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import POLICIES
from hera_router.simulator.generate import generate
from tests.integration.pipeline.helpers import assert_consistent_record
from tests.unit.pipeline.harness import Harness, failing_edge

SEED = 5
HarnessFactory = Callable[..., Harness]


def _request(harness: Harness, request_id: uuid.UUID) -> tuple[RequestStatus, float, int, int]:
    with session_scope(harness.runtime.sessions) as session:
        row = RequestRepository(session).get(request_id)
        assert row is not None
        return row.status, row.cost_usd, row.slm_steps, row.llm_steps


def test_a_request_runs_plan_run_plan_to_its_answer(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.drain()
    status, cost, slm, llm = _request(harness, request_id)
    assert status is RequestStatus.SUCCEEDED
    assert llm >= 2
    assert slm == 0
    assert cost > 0
    kinds = [message.task for message in harness.sent]
    # One router hop then one execution hop per step, strictly alternating, nothing else.
    assert kinds == [TaskName.PLAN_STEP, TaskName.RUN_SUBTASK] * llm
    assert harness.sent[0].task_id == plan_task_id(request_id, 0)
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_every_message_delivered_twice_changes_nothing(harness_factory: HarnessFactory) -> None:
    tasks = generate("mixed", 3, SEED)
    once, twice = harness_factory(simulator={"seed": SEED}), harness_factory(simulator={"seed": SEED})
    ids_once = once.submit(tasks, "random")
    ids_twice = twice.submit(tasks, "random")
    once.drain()
    twice.drain(twice=True)
    assert [_request(once, i) for i in ids_once] == [_request(twice, i) for i in ids_twice]
    for request_id in ids_twice:
        assert_consistent_record(twice.runtime.sessions, request_id)


def test_a_claimed_step_is_not_run_twice_and_a_stale_executor_is_ignored(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())  # plan step 0
    run = harness.queue.popleft()
    subtask_id = uuid.UUID(run.kwargs["subtask_id"])
    assert harness.pipeline.execution._claim(subtask_id, Executor.LLM) != "skipped"  # a worker holds it
    assert harness.pipeline.run_subtask(subtask_id, Executor.LLM) == "skipped"  # a duplicate finds it running
    assert harness.pipeline.run_subtask(subtask_id, Executor.SLM) == "skipped"  # predates no fallback: ignored
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).get(subtask_id)
        assert step is not None
        assert step.status is SubtaskStatus.RUNNING
        assert step.attempts == 1
        # Only the holder's call is on record (started); the duplicates made none.
        calls = ModelCallRepository(session).list_for_request(request_id)
        assert [call.status for call in calls] == [CallStatus.STARTED]


class SpanOfThree(PolicyBase):
    name = "unit-span"

    def __init__(self, settings: RoutingSettings) -> None:
        pass

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        if context.seq == 0:
            return Decision(executor=Executor.SLM, branch="sle", policy=self.name, span=3)
        return Decision(executor=Executor.LLM, branch="fallback", policy=self.name)


class DecomposeFirst(PolicyBase):
    name = "unit-sd"

    def __init__(self, settings: RoutingSettings) -> None:
        pass

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        if context.seq == 0:
            parts = ("Find the first entity named in the request.", "Look up what the request asks about it.")
            return Decision(executor=Executor.SLM, branch="sd", policy=self.name, parts=parts)
        return Decision(executor=Executor.LLM, branch="fallback", policy=self.name)


class DecomposePartially(DecomposeFirst):
    """Partial SD: the first part on the SLM, the second on the LLM."""

    name = "unit-sd-partial"

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        decision = super().decide(context, estimators)
        if decision.parts:
            return replace(decision, policy=self.name, part_executors=(Executor.SLM, Executor.LLM))
        return replace(decision, policy=self.name)


@pytest.fixture
def unit_policies() -> Iterator[None]:
    POLICIES[SpanOfThree.name] = SpanOfThree
    POLICIES[DecomposeFirst.name] = DecomposeFirst
    POLICIES[DecomposePartially.name] = DecomposePartially
    yield
    del POLICIES[SpanOfThree.name], POLICIES[DecomposeFirst.name], POLICIES[DecomposePartially.name]


@pytest.mark.usefixtures("unit_policies")
def test_a_span_runs_its_steps_without_routing(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    tasks = [next(t for t in generate("lookup", 20, SEED) if t.hops >= 4)]
    [request_id] = harness.submit(tasks, SpanOfThree.name)
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        decisions = DecisionRepository(session).list_for_request(request_id)
        steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
    covered = [d for d in decisions if d.seq < 3]
    assert [(d.executor, d.span) for d in covered] == [(Executor.SLM, 3), (Executor.SLM, 2), (Executor.SLM, 1)][
        : len(covered)
    ]
    assert all("span_origin" in d.scores for d in covered[1:])
    plans = [int(m.kwargs["seq"]) for m in harness.sent if m.task == TaskName.PLAN_STEP]
    assert 1 not in plans
    assert 2 not in plans
    assert [s.executor for s in steps[:3]] == [Executor.SLM] * min(3, len(steps))
    assert_consistent_record(harness.runtime.sessions, request_id)


@pytest.mark.usefixtures("unit_policies")
def test_a_decomposed_step_runs_its_parts_in_order(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), DecomposeFirst.name)
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        rows = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.seq == 0]
        calls = ModelCallRepository(session).list_for_request(request_id)
    parent = next(s for s in rows if s.part == 0)
    parts = sorted((s for s in rows if s.part > 0), key=lambda s: s.part)
    assert [s.part for s in parts] == [1, 2]
    assert all(s.parent_id == parent.id for s in parts)
    assert parent.status is SubtaskStatus.SUCCEEDED
    assert all(s.status is SubtaskStatus.SUCCEEDED for s in parts)
    assert {c.subtask_id for c in calls if c.status is CallStatus.OK} >= {s.id for s in parts}
    assert parent.id not in {c.subtask_id for c in calls}  # the parts ran in its place
    runs = [m.kwargs["subtask_id"] for m in harness.sent if m.task == TaskName.RUN_SUBTASK]
    assert runs[0] == str(parts[0].id)
    assert str(parts[1].id) not in runs  # the second part ran inside the first part's task
    assert_consistent_record(harness.runtime.sessions, request_id)


@pytest.mark.usefixtures("unit_policies")
def test_a_partially_decomposed_step_runs_each_part_on_its_own_executor(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), DecomposePartially.name)
    harness.drain()
    with session_scope(harness.runtime.sessions) as session:
        rows = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.seq == 0]
        calls = ModelCallRepository(session).list_for_request(request_id)
    parts = sorted((s for s in rows if s.part > 0), key=lambda s: s.part)
    assert [(s.executor, s.status) for s in parts] == [
        (Executor.SLM, SubtaskStatus.SUCCEEDED),
        (Executor.LLM, SubtaskStatus.SUCCEEDED),
    ]
    by_part = {c.subtask_id: c.role.value for c in calls if c.status is CallStatus.OK}
    assert [by_part[s.id] for s in parts] == ["edge", "cloud"]
    runs = [(m.kwargs["subtask_id"], m.kwargs["executor"]) for m in harness.sent if m.task == TaskName.RUN_SUBTASK]
    assert (str(parts[1].id), "llm") in runs  # through the broker, to the cloud queue
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_an_edge_failure_falls_back_to_the_cloud(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(
        simulator={"seed": SEED}, backend_factory=failing_edge(BackendUnavailable("sim", "edge is down"))
    )
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-slm")
    harness.drain()
    status, _, slm, llm = _request(harness, request_id)
    assert status is RequestStatus.SUCCEEDED
    assert slm == 0
    assert llm >= 2
    with session_scope(harness.runtime.sessions) as session:
        decisions = DecisionRepository(session).list_for_request(request_id)
        calls = ModelCallRepository(session).list_for_request(request_id)
    assert all(d.executor is Executor.LLM and "edge unavailable" in (d.fallback_reason or "") for d in decisions)
    assert sum(c.status is CallStatus.ERROR for c in calls) == len(decisions)
    edge_runs = [m for m in harness.sent if m.task == TaskName.RUN_SUBTASK and m.kwargs["executor"] == "slm"]
    cloud_runs = [m for m in harness.sent if m.task == TaskName.RUN_SUBTASK and m.kwargs["executor"] == "llm"]
    assert len(edge_runs) == len(cloud_runs) == len(decisions)
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_a_lost_message_is_re_driven_by_the_reconciler(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, reconcile_after_s=0.001)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    lost: list[str] = []

    def lose_first_run(message: object) -> bool:
        if getattr(message, "task", None) == TaskName.RUN_SUBTASK and not lost:
            lost.append(message.task_id)  # type: ignore[attr-defined]
            return True
        return False

    harness.drain(drop=lose_first_run)
    assert _request(harness, request_id)[0] is RequestStatus.RUNNING  # stuck: its run message is gone
    assert harness.pipeline.reconcile() == 1
    assert harness.sent[-1].task_id == lost[0]  # the same hop, the same task id
    harness.drain()
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_a_request_at_another_step_ignores_a_stale_plan_message(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED})
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.drain()
    before = _request(harness, request_id)
    assert harness.pipeline.plan_step(request_id, 0) is None
    assert harness.pipeline.plan_step(request_id, 7) is None
    assert _request(harness, request_id) == before
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).list_for_request(request_id)[0]
    assert harness.pipeline.run_subtask(step.id, step.executor) == "skipped"
    assert run_task_id(step.id, step.executor) in {m.task_id for m in harness.sent}


def test_a_model_call_is_on_record_before_it_is_made(harness_factory: HarnessFactory) -> None:
    """A worker that dies between the HTTP call and its commit leaves the call ``started``: on
    record, with an estimated cost, reported as unknown; the step is re-run under a new key."""
    from datetime import timedelta

    from hera_router.api.views import summarise_calls
    from hera_router.db.base import utcnow

    harness = harness_factory(simulator={"seed": SEED}, reconcile_after_s=0.001)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())  # plan step 0
    run = harness.queue.popleft()
    subtask_id = uuid.UUID(run.kwargs["subtask_id"])
    claimed = harness.pipeline.execution._claim(subtask_id, Executor.LLM)  # then the worker "dies"
    assert not isinstance(claimed, str)
    harness.pipeline.services.liveness.stop()
    harness.reconciler_has_watched_for(60)
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).get(subtask_id)
        assert step is not None
        step.updated_at = utcnow() - timedelta(seconds=60)  # nobody touched it for the timeout
    with session_scope(harness.runtime.sessions) as session:
        [call] = ModelCallRepository(session).list_for_request(request_id)
        assert call.status is CallStatus.STARTED
        assert call.idempotency_key == claimed.call_key
        assert call.estimated_cost_usd > 0
        assert call.cost_usd == 0
    assert harness.pipeline.reconcile() == 1  # the running step is given back and re-driven
    harness.drain()
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED
    with session_scope(harness.runtime.sessions) as session:
        calls = ModelCallRepository(session).list_for_request(request_id)
        summary = summarise_calls(calls)
        total = ModelCallRepository(session).total_cost(request_id)
    assert summary.unknown == 1
    assert summary.unknown_cost_usd == call.estimated_cost_usd
    keys = {c.idempotency_key for c in calls if c.subtask_id == subtask_id}
    assert keys == {f"call:{subtask_id}:llm:1", f"call:{subtask_id}:llm:2"}
    assert abs(total - _request(harness, request_id)[1]) < 1e-12  # the unknown call adds no known cost
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_a_continuation_of_a_span_runs_in_the_same_task(harness_factory: HarnessFactory) -> None:
    POLICIES[SpanOfThree.name] = SpanOfThree
    try:
        harness = harness_factory(simulator={"seed": SEED})
        tasks = [next(t for t in generate("lookup", 20, SEED) if t.hops >= 4)]
        [request_id] = harness.submit(tasks, SpanOfThree.name)
        harness.drain()
    finally:
        del POLICIES[SpanOfThree.name]
    runs = [m for m in harness.sent if m.task == TaskName.RUN_SUBTASK]
    harness.pipeline.services.dispatcher.flush_marks()  # what was sent is marked (as the idle flush would)
    with session_scope(harness.runtime.sessions) as session:
        steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
        unpublished = OutboxRepository(session).claim_unpublished(100)
    # Steps 1 and 2 of the span ran inside step 0's task: one run message for the three of them.
    assert [m.kwargs["subtask_id"] for m in runs[:1]] == [str(steps[0].id)]
    assert str(steps[1].id) not in {m.kwargs["subtask_id"] for m in runs}
    assert str(steps[2].id) not in {m.kwargs["subtask_id"] for m in runs}
    assert unpublished == []  # their outbox rows count as delivered: the relay will not send them
    assert_consistent_record(harness.runtime.sessions, request_id)


def test_a_step_whose_worker_stopped_beating_is_given_back_within_the_timeout(
    harness_factory: HarnessFactory,
) -> None:
    from datetime import timedelta

    from hera_router.db.base import utcnow
    from hera_router.db.repositories import WorkerRepository

    harness = harness_factory(simulator={"seed": SEED}, worker_timeout_s=5.0, lost_after_s=60.0)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())
    run = harness.queue.popleft()
    subtask_id = uuid.UUID(run.kwargs["subtask_id"])
    claimed = harness.pipeline.execution._claim(subtask_id, Executor.LLM)
    assert not isinstance(claimed, str)
    dead = harness.pipeline.services.liveness.name
    harness.pipeline.services.liveness.stop()  # the claiming process "died": no more beats
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).get(subtask_id)
        assert step is not None
        assert step.claimed_by == dead
        workers = WorkerRepository(session)
        workers.beat("other-host:1", utcnow())  # another worker is alive and beating
        step.updated_at = utcnow() - timedelta(seconds=6)  # claimed longer ago than the timeout
    assert harness.pipeline.reconcile() == 0  # just started: it gives the workers time to beat first
    harness.reconciler_has_watched_for(60)
    assert harness.pipeline.reconcile() == 1
    assert harness.sent[-1].task_id == run.task_id
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).get(subtask_id)
        assert step is not None
        assert step.status is SubtaskStatus.PENDING
    harness.drain()
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED


def test_a_step_its_worker_is_still_on_is_left_alone_however_long_it_runs(harness_factory: HarnessFactory) -> None:
    from datetime import timedelta

    from hera_router.db.base import utcnow

    harness = harness_factory(simulator={"seed": SEED}, worker_timeout_s=5.0, lost_after_s=0.001)
    harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.deliver(harness.queue.popleft())
    run = harness.queue.popleft()
    subtask_id = uuid.UUID(run.kwargs["subtask_id"])
    assert not isinstance(harness.pipeline.execution._claim(subtask_id, Executor.LLM), str)
    liveness = harness.pipeline.services.liveness
    harness.reconciler_has_watched_for(60)

    def claimed_long_ago() -> None:
        with session_scope(harness.runtime.sessions) as session:
            step = SubtaskRepository(session).get(subtask_id)
            assert step is not None
            step.updated_at = utcnow() - timedelta(seconds=60)  # a long model call

    with liveness.holding(subtask_id):  # the worker is in the model call
        claimed_long_ago()
        assert liveness.beat()  # its heartbeat keeps the step fresh
        assert harness.pipeline.reconcile() == 0
    # The task gave the step up (an error; its retry will find the step running and skip): once
    # nobody touches it, it is given back like a dead worker's.
    claimed_long_ago()
    assert liveness.beat()
    assert harness.pipeline.reconcile() == 1
    with session_scope(harness.runtime.sessions) as session:
        step = SubtaskRepository(session).get(subtask_id)
        assert step is not None
        assert step.status is SubtaskStatus.PENDING


def test_an_idle_request_is_re_driven_quickly_only_when_its_queue_is_empty(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, lost_after_s=0.001, reconcile_after_s=3600)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.queue.clear()  # the broker lost the first plan message
    depth = {"router": 3}
    harness.pipeline.services.queue_depth = lambda queue: depth.get(str(queue), 0)
    assert harness.pipeline.reconcile() == 0  # the router queue is busy: it may still arrive
    depth["router"] = 0
    assert harness.pipeline.reconcile() == 1  # nothing waiting anywhere: it was lost
    assert harness.sent[-1].task_id == plan_task_id(request_id, 0)
    harness.drain()
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED


def test_a_message_a_dead_worker_took_is_re_driven_although_its_queue_is_busy(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(simulator={"seed": SEED}, lost_after_s=0.001, reconcile_after_s=3600)
    [request_id] = harness.submit(generate("lookup", 1, SEED), "all-llm")
    harness.queue.clear()  # a router took the plan message and died before acknowledging it
    harness.pipeline.services.queue_depth = lambda queue: 5  # other requests' messages wait
    harness.pipeline.services.held_messages = lambda older_than_s: set()
    assert harness.pipeline.reconcile() == 0  # nothing says it is lost
    harness.pipeline.services.held_messages = lambda older_than_s: {plan_task_id(request_id, 0)}
    assert harness.pipeline.reconcile() == 1  # the broker holds it unacknowledged, for too long
    harness.drain()
    assert _request(harness, request_id)[0] is RequestStatus.SUCCEEDED


def test_a_backend_is_built_outside_any_transaction(harness_factory: HarnessFactory) -> None:
    """Building a backend may load a model; no hop holds the database meanwhile. The factory
    writes from the hop's own thread: a hop holding SQLite's write lock would make it time out."""
    made: list[Harness] = []
    built: list[str] = []

    def factory(settings: Settings, role: BackendRole) -> ModelBackend:
        with session_scope(made[0].runtime.sessions) as session:
            session.execute(text("SELECT 1"))  # a write unit of work: it needs the write lock
        built.append(role)
        return default_backend_factory(settings, role)

    made.append(harness_factory(simulator={"seed": SEED}, backend_factory=factory, db_lock_timeout_ms=200))
    [request_id] = made[0].submit(generate("lookup", 1, SEED), "all-slm")
    made[0].drain()
    assert built == ["edge"]
    assert _request(made[0], request_id)[0] is RequestStatus.SUCCEEDED


def test_a_policy_is_at_hand_while_a_backend_is_being_built(harness_factory: HarnessFactory) -> None:
    """Hops read policies inside their transactions: a model loading on another thread must not
    make them wait."""
    entered, release = threading.Event(), threading.Event()

    def factory(settings: Settings, role: BackendRole) -> ModelBackend:
        entered.set()
        release.wait(30)
        return default_backend_factory(settings, role)

    services = harness_factory(simulator={"seed": SEED}, backend_factory=factory).pipeline.services
    building = threading.Thread(target=services.backend, args=("edge",))
    building.start()
    try:
        assert entered.wait(10)
        reading = threading.Thread(target=services.policy, args=("all-slm",))
        reading.start()
        reading.join(10)
        assert not reading.is_alive(), "policy() waited for the backend being built"
    finally:
        release.set()
        building.join(30)
    assert services.backend("edge") is services.backend("edge")
