"""HERA through the real embedded system with stub estimators: the decisions and subtask rows in
the database follow the branch semantics (a span of d + 1 SLM steps after an SLE pass, child rows
after an SD pass, the whole request on the SLM after a URC pass)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hera_router.agent.format import parse_decomposition, render_decompose_messages
from hera_router.backends.base import GenerationParams
from hera_router.config import load_settings
from hera_router.db.enums import Executor, RequestStatus
from hera_router.db.repositories import DecisionRepository, SubtaskRepository
from hera_router.db.session import session_scope
from hera_router.routing.estimators import ChainState, Estimators
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished
from tests.unit.routing.stubs import FixedDistance, LLMPredictor, SLMPredictor

SEED = 3
LOW, HIGH = 0.1, 0.95


class SimDecomposer:
    """SD by the simulated SLM (the ``prompted`` variant), so the parts are steps it can run."""

    version = "sd-sim"

    def __init__(self) -> None:
        self.slm = SimBackend("slm", "sim-slm", seed=SEED)
        self.parts: set[str] = set()

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        answer = self.slm.generate(render_decompose_messages(subtask, request, expected_next), GenerationParams())
        parts = parse_decomposition(answer.text)
        self.parts.update(parts)
        return parts


class ScoreByRequest:
    version = "urc-stub"

    def __init__(self, slm_requests: Sequence[str]) -> None:
        self.slm_requests = set(slm_requests)

    def score(self, request: str) -> float:
        return 0.9 if request in self.slm_requests else 0.1


def scripted_estimators(urc_requests: Sequence[str]) -> Estimators:
    """Step 0: SLE passes with d = 1 (span 2). Step 2: only SD passes. Step 3: nothing (LLM). Later: SSE."""
    decomposer = SimDecomposer()

    def script(state: ChainState) -> Sequence[float]:
        if state.current in decomposer.parts:
            return [HIGH] if state.seq == 2 else [LOW]  # SD passes at step 2 only
        return {0: [LOW, HIGH], 1: [LOW], 2: [LOW], 3: [LOW]}.get(state.seq, [HIGH])

    class DistanceOneAtStart(FixedDistance):
        def predict(self, subtask: str, seq: int) -> int | None:
            return 1 if seq == 0 else None

    return Estimators(
        urc=ScoreByRequest(urc_requests),
        sp_slm=SLMPredictor(by_state=script),
        sp_llm=LLMPredictor(),
        dp=DistanceOneAtStart(None),
        sd=decomposer,
        versions={"urc": "urc-stub", "sp_slm": "sp-stub", "sp_llm": "sp-stub", "dp": "dp-stub", "sd": "sd-sim"},
    )


def test_hera_decisions_in_the_database_follow_the_branch_semantics(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"cd_horizon": 3})
    tasks = generate("arithmetic", 6, SEED)  # 6-7 step chains: every scripted step exists
    urc_task = tasks[0]
    stub = scripted_estimators([urc_task.request])
    with embedded_system(settings) as system:
        system.app.pipeline.estimator_source = lambda: stub
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "hera")
        rows = wait_until_finished(sessions, ids, timeout_s=120)
        records = {}
        with session_scope(sessions) as session:
            for request_id in ids:
                records[request_id] = (
                    DecisionRepository(session).list_for_request(request_id),
                    SubtaskRepository(session).list_for_request(request_id),
                )
        for request_id in ids:
            assert_consistent_record(sessions, request_id)

    assert all(row.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED) for row in rows.values())
    urc_id, *hera_ids = ids
    decisions, _ = records[urc_id]
    assert [(d.branch, d.executor, d.span) for d in decisions] == [
        ("urc", Executor.SLM, settings.routing.max_steps - d.seq) for d in decisions
    ]
    assert decisions[0].scores == {"urc": 0.9}
    decomposed = 0
    for request_id in hera_ids:
        decisions, subtasks = records[request_id]
        assert len(decisions) >= 4, "the scripted steps all ran"
        by_seq = {d.seq: d for d in decisions}
        # SLE at step 0 with d = 1: steps 0 and 1 on the SLM, step 1 not re-routed.
        assert (by_seq[0].branch, by_seq[0].span, by_seq[0].executor) == ("sle", 2, Executor.SLM)
        assert by_seq[0].scores["dp_d"] == 1.0
        assert by_seq[0].estimator_versions["sd"] == "sd-sim"
        assert (by_seq[1].branch, by_seq[1].span, by_seq[1].scores) == ("sle", 1, {"span_origin": 0})
        # SD at step 2: when the simulated SLM splits the step (it leaves some steps whole, and a
        # single part is no decomposition), the parts are child rows, all on the SLM, each executed.
        parent = next(s for s in subtasks if s.seq == 2 and s.part == 0)
        parts = [s for s in subtasks if s.parent_id == parent.id]
        if by_seq[2].scores["sd_parts"] >= 2:
            decomposed += 1
            assert (by_seq[2].branch, by_seq[2].executor) == ("sd", Executor.SLM)
            assert len(parts) == by_seq[2].scores["sd_parts"]
            assert all(p.executor is Executor.SLM and p.output is not None for p in parts)
            assert parent.output == max(parts, key=lambda p: p.part).output
        else:
            assert (by_seq[2].branch, by_seq[2].executor, parts) == ("fallback", Executor.LLM, [])
        # Step 3: every stage fails, the LLM runs it; later steps pass SSE.
        assert (by_seq[3].branch, by_seq[3].executor) == ("fallback", Executor.LLM)
        assert all((d.branch, d.executor) == ("sse", Executor.SLM) for d in decisions if d.seq > 3)
        assert all(d.kappa is not None for d in decisions if d.seq != 1)
    assert decomposed, "no request exercised the SD branch"


def verifying_estimators(min_logprob: float) -> Estimators:
    """Every step passes SSE; the verify stage rejects a step whose logprob is at or below ``min_logprob``."""
    from dataclasses import replace

    from tests.unit.routing.stubs import FixedScorer, StubDivergence

    return replace(
        Estimators(
            urc=FixedScorer(0.0),
            sp_slm=SLMPredictor(default=[HIGH] * 16),
            sp_llm=LLMPredictor(),
            dp=FixedDistance(None),
            sd=SimDecomposer(),
        ),
        divergence=StubDivergence(agree=0.99, min_logprob=min_logprob),
        embed=lambda text: np.array([1.0, 0.0], dtype=np.float32),
    )


def test_verify_escalates_unsure_slm_steps_to_the_cloud_and_records_both_calls(tmp_path: Path) -> None:
    """Every step passes SSE (SLM first); the verify stage rejects the steps whose simulated
    logprob is low, and each such step runs again on the cloud: both calls and costs are in the
    database, the decision says why, the SLM's answer is kept aside, the request completes."""
    from hera_router.db.enums import CallStatus, ModelRole
    from hera_router.db.repositories import ModelCallRepository, RequestRepository

    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"verify_threshold": 0.5})
    tasks = generate("arithmetic", 6, SEED)
    stub = verifying_estimators(min_logprob=-0.45)
    with embedded_system(settings) as system:
        system.app.pipeline.estimator_source = lambda: stub
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "hera")
        rows = wait_until_finished(sessions, ids, timeout_s=120)
        escalated = 0
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
            with session_scope(sessions) as session:
                decisions = {d.seq: d for d in DecisionRepository(session).list_for_request(request_id)}
                steps = [s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0]
                calls = ModelCallRepository(session).list_for_request(request_id)
                request = RequestRepository(session).get(request_id)
                assert request is not None
                for step in steps:
                    decision = decisions[step.seq]
                    assert "verify_score" in decision.scores, "every SLM step was verified"
                    if step.branch != "verify":
                        assert (step.executor, decision.scores["verify_accept"]) == (Executor.SLM, 1.0)
                        continue
                    escalated += 1
                    assert (step.executor, decision.branch, decision.executor) == (
                        Executor.LLM,
                        "verify",
                        Executor.LLM,
                    )
                    assert decision.scores["verify_accept"] == 0.0
                    assert decision.fallback_reason is not None
                    assert decision.fallback_reason.startswith("verify:")
                    assert step.speculative_output is not None
                    roles = sorted(c.role.value for c in calls if c.subtask_id == step.id and c.status is CallStatus.OK)
                    assert roles == sorted([ModelRole.EDGE.value, ModelRole.CLOUD.value])
                assert request.slm_steps + request.llm_steps == len(steps)
    assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values())
    assert escalated, "no SLM step scored below the verify threshold"


def test_a_lost_verify_message_is_re_driven_and_the_request_completes(tmp_path: Path) -> None:
    """The broker drops the first verify hop (the SLM step succeeded, the request did not move on):
    the reconciler finds the succeeded step at the request's current step and re-sends its verify
    hop, not the router's plan_step (which would find the step decided and do nothing)."""
    from hera_router.pipeline.names import TaskName

    settings = load_settings(
        data_dir=tmp_path, simulator={"seed": SEED}, reconcile_after_s=1, reconcile_interval_s=1, relay_interval_s=0.2
    )
    task = generate("arithmetic", 1, SEED)
    stub = verifying_estimators(min_logprob=-99.0)  # every step accepted
    with embedded_system(settings) as system:
        pipeline = system.app.pipeline
        pipeline.estimator_source = lambda: stub
        dispatcher = pipeline.services.dispatcher
        send, dropped = dispatcher._publish, []

        def lossy(task_name: str, kwargs: dict[str, object], task_id: str) -> None:
            if task_name == TaskName.VERIFY_STEP and not dropped:
                dropped.append(task_id)  # "sent", as far as the outbox knows; never delivered
                return
            send(task_name, kwargs, task_id)

        dispatcher._publish = lossy
        sessions = system.app.hera_runtime.sessions
        [request_id] = submit(sessions, celery_dispatcher(system.app), task, "hera")
        rows = wait_until_finished(sessions, [request_id], timeout_s=90)
        assert_consistent_record(sessions, request_id)
        with session_scope(sessions) as session:
            first = DecisionRepository(session).get(request_id, 0)
            assert first is not None
            assert first.scores["verify_accept"] == 1.0, "the re-driven verify hop judged step 0"
    assert dropped, "the first verify message was dropped"
    assert rows[request_id].status is RequestStatus.SUCCEEDED
