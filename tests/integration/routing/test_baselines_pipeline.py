"""Policies that depend on what the pipeline records: minions reads the SLM's confidence of the
step before, ``hera`` without estimators routes in cold-start mode and says so on every decision,
and a policy that cannot decide fails its request with the reason."""

from __future__ import annotations

from pathlib import Path

from hera_router.api.views import RequestViews
from hera_router.config import load_settings
from hera_router.db.enums import Executor, RequestStatus
from hera_router.db.repositories import DecisionRepository, SubtaskRepository
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished

SEED = 4


def test_minions_escalates_after_an_unsure_slm_step(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED})
    threshold = settings.routing.minions_logprob_threshold
    tasks = generate("mixed", 8, SEED)
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "minions")
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=120)
        escalations = 0
        with session_scope(sessions) as session:
            for request_id in ids:
                steps = {s.seq: s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0}
                for decision in DecisionRepository(session).list_for_request(request_id):
                    previous = steps.get(decision.seq - 1)
                    if previous is None or previous.executor is not Executor.SLM:
                        assert decision.executor is Executor.SLM
                        continue
                    assert previous.confidence is not None, "the edge step's confidence was not recorded"
                    unsure = previous.confidence < threshold
                    assert decision.executor is (Executor.LLM if unsure else Executor.SLM)
                    assert decision.scores["previous_logprob"] == previous.confidence
                    escalations += unsure
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
    assert all(row.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED) for row in rows.values())
    assert escalations > 0, "the simulated SLM was never unsure: the test proves nothing"


def test_an_ablation_without_its_estimators_fails_the_request_with_the_reason(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED})
    with embedded_system(settings) as system:
        ids = submit(
            system.app.hera_runtime.sessions, celery_dispatcher(system.app), generate("lookup", 1, SEED), "hera-paper"
        )
        [row] = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=60).values()
    assert row.status is RequestStatus.FAILED
    assert "needs trained estimators" in (row.error or "")
    assert "bootstrap" in (row.error or "")


def test_hera_without_estimators_routes_in_cold_start_mode_and_records_it(tmp_path: Path) -> None:
    """No bootstrap: every step on the SLM first, kept or re-run on the LLM by its logprob against
    the cold-start threshold, and every decision says it was made in cold-start mode."""
    threshold = -0.3
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"cold_start_threshold": threshold})
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), generate("mixed", 6, SEED), "hera")
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=180)
        kept = escalated = 0
        with session_scope(sessions) as session:
            for request_id in ids:
                steps = {s.seq: s for s in SubtaskRepository(session).list_for_request(request_id) if s.part == 0}
                for decision in DecisionRepository(session).list_for_request(request_id):
                    assert decision.policy == "hera"
                    assert decision.scores["cold_start"] == 1.0
                    assert decision.scores["cold_start_threshold"] == threshold
                    assert decision.scores["verify_threshold"] == threshold
                    score = decision.scores["verify_score"]
                    if decision.branch == "cold-start-verify":
                        assert decision.executor is Executor.SLM
                        assert score >= threshold
                        assert steps[decision.seq].executor is Executor.SLM
                        kept += 1
                    else:
                        assert decision.branch == "verify"
                        assert decision.executor is Executor.LLM
                        assert score < threshold
                        assert (decision.fallback_reason or "").startswith("cold start:")
                        assert steps[decision.seq].executor is Executor.LLM
                        escalated += 1
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
        # The request view (GET /v1/agent-requests/{id}) shows each step's branch and the mode.
        tenant = rows[ids[0]].tenant_id
        shown = RequestViews(system.app.hera_runtime.read_sessions).request_detail(tenant, ids[0])
        assert shown is not None
        assert shown.decisions
        assert {d.branch for d in shown.decisions} <= {"cold-start-verify", "verify"}
        assert all(d.scores["cold_start"] == 1.0 for d in shown.decisions)
    assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values()), [r.error for r in rows.values()]
    assert kept > 0, "the SLM was never sure enough: the test proves nothing"
    assert escalated > 0, "the SLM was never unsure: the test proves nothing"
