"""The execution path honours what a decision says: spans run on the SLM without re-routing,
decomposed steps run as child subtasks, and the step limit ends a wandering request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hera_router.agent.format import parse_decomposition, render_decompose_messages
from hera_router.backends.base import GenerationParams
from hera_router.config import RoutingSettings, load_settings
from hera_router.db.enums import CallStatus, Executor, RequestStatus
from hera_router.db.repositories import DecisionRepository, ModelCallRepository, SubtaskRepository
from hera_router.db.session import session_scope
from hera_router.routing.base import Decision, PolicyBase, RoutingContext
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import POLICIES
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished

SEED = 3


class SpanAtStart(PolicyBase):
    """Step 0 covers three steps on the SLM (as an SLE pass would); later steps go to the LLM."""

    name = "test-span"

    def __init__(self, settings: RoutingSettings) -> None:
        self.calls: list[int] = []

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        if context.seq == 0:
            return Decision(executor=Executor.SLM, branch="sle", policy=self.name, span=3, scores={"d": 2.0})
        return Decision(executor=Executor.LLM, branch="fallback", policy=self.name)


class DecomposeSecondStep(PolicyBase):
    """Step 1 is decomposed by the simulated SLM (as an SD pass would); other steps go to the LLM."""

    name = "test-sd"

    def __init__(self, settings: RoutingSettings) -> None:
        self.slm = SimBackend("slm", "sim-slm", seed=SEED)

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        if context.seq == 1:
            answer = self.slm.generate(render_decompose_messages(context.current, context.request), GenerationParams())
            parts = tuple(parse_decomposition(answer.text))
            assert len(parts) >= 2, answer.text
            return Decision(executor=Executor.SLM, branch="sd", policy=self.name, parts=parts)
        return Decision(executor=Executor.LLM, branch="fallback", policy=self.name)


@pytest.fixture
def test_policies() -> Iterator[None]:
    POLICIES[SpanAtStart.name] = SpanAtStart
    POLICIES[DecomposeSecondStep.name] = DecomposeSecondStep
    yield
    del POLICIES[SpanAtStart.name], POLICIES[DecomposeSecondStep.name]


@pytest.mark.usefixtures("test_policies")
def test_spans_and_decompositions_are_executed_as_decided(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED})
    tasks = generate("lookup", 2, SEED)
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        span_ids = submit(sessions, celery_dispatcher(system.app), tasks[:1], SpanAtStart.name)
        sd_ids = submit(sessions, celery_dispatcher(system.app), tasks[1:], DecomposeSecondStep.name)
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, span_ids + sd_ids, timeout_s=120)
        for request_id in span_ids + sd_ids:
            assert_consistent_record(sessions, request_id)
        with session_scope(sessions) as session:
            span_decisions = DecisionRepository(session).list_for_request(span_ids[0])
            span_steps = [s for s in SubtaskRepository(session).list_for_request(span_ids[0]) if s.part == 0]
            sd_subtasks = SubtaskRepository(session).list_for_request(sd_ids[0])
            sd_calls = ModelCallRepository(session).list_for_request(sd_ids[0])

    assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values())
    # The span: three SLM steps, the covered ones carry the span left and where it started.
    assert [(d.seq, d.branch, d.span, d.executor) for d in span_decisions[:3]] == [
        (0, "sle", 3, Executor.SLM),
        (1, "sle", 2, Executor.SLM),
        (2, "sle", 1, Executor.SLM),
    ]
    assert [d.scores.get("span_origin") for d in span_decisions[1:3]] == [0, 0]
    assert [s.executor for s in span_steps[:3]] == [Executor.SLM] * 3
    assert all(d.executor is Executor.LLM for d in span_decisions[3:])
    # The decomposition: the parts are children of step 1, each with its own call; the step has none.
    parent = next(s for s in sd_subtasks if s.seq == 1 and s.part == 0)
    parts = sorted((s for s in sd_subtasks if s.parent_id == parent.id), key=lambda s: s.part)
    assert len(parts) >= 2
    assert all(p.executor is Executor.SLM and p.output for p in parts)
    called = {c.subtask_id for c in sd_calls if c.status is CallStatus.OK}
    assert {p.id for p in parts} <= called
    assert parent.id not in called
    assert parent.output == parts[-1].output
    assert any(s.seq == 2 for s in sd_subtasks), "the request went on after the decomposed step"


def test_the_step_limit_fails_a_request_with_its_reason(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"max_steps": 2})
    tasks = generate("lookup", 1, SEED)
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "all-llm")
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=60)
    [row] = rows.values()
    assert row.status is RequestStatus.FAILED
    assert "2 steps" in (row.error or "")
    assert "HERA_ROUTING__MAX_STEPS" in (row.error or "")
