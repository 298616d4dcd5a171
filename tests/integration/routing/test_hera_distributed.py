"""HERA with real trained estimators and every baseline, through real workers on Postgres and Redis.

The estimators are the session's tiny trained set (``tests/integration/conftest.py``), registered
and promoted in this test's Postgres database; the router worker process (threads pool, with
micro-batched estimator calls, as deployed) loads them from the registry as in production. The
requests are the profiled ones (the same simulated world), so the Oracle's plan and the HybridLLM
router fitted on that profile apply. Asserted per policy: every request finishes, and the decisions
in Postgres follow the policy's semantics: HERA's spans cover exactly span - 1 undecided SLM steps
after an SLE/CD/URC pass, an SD pass has child rows that ran on the SLM, the versions on every
decision are the promoted ones; the Oracle follows its plan; All-SLM / All-LLM never leave their
model. Everything here is simulated.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hera_router.db.enums import Executor, RequestStatus
from hera_router.db.models import Decision, Subtask
from hera_router.db.repositories import DecisionRepository, EstimatorVersionRepository, SubtaskRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate
from hera_router.training.baselines import fit_hybridllm, fit_oracle
from hera_router.training.labels import RequestTree
from hera_router.training.replay import load_profile
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL
from tests.integration.conftest import TrainedEstimators
from tests.integration.pipeline.distributed import distributed_system
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

N_REQUESTS = 8
HERA_BRANCHES = {"urc", "sse", "sle", "cd", "sd", "fallback"}
MAX_STEPS = 15  # routing.max_steps: spans are cut where the chain must end


def register(sessions: sessionmaker[Session], trained: TrainedEstimators) -> dict[str, str]:
    """Register and promote the session's trained set in this database; name -> version."""
    versions = {}
    with session_scope(sessions) as session:
        registry = EstimatorVersionRepository(session)
        for name, result in trained.default_set().items():
            row = registry.add_candidate(name, str(result.path), metrics=dict(result.metrics), backbone=result.backbone)
            registry.promote(name, row.version)
            versions[name] = str(row.version)
    return versions


def fit_baselines(runtime: Runtime, run_id: uuid.UUID, folder: Path) -> tuple[Path, Path]:
    """HybridLLM's router and the Oracle's plan, fitted on the profile the requests came from."""
    profile = load_profile(runtime.settings, runtime.sessions, run_id)
    router_path, plan_path = folder / "hybridllm.json", folder / "oracle.json"
    fit_hybridllm(profile, router_path)
    fit_oracle(profile, plan_path)
    return router_path, plan_path


def records(sessions: sessionmaker[Session], request_id: uuid.UUID) -> tuple[list[Decision], dict[int, list[Subtask]]]:
    with session_scope(sessions) as session:
        decisions = list(DecisionRepository(session).list_for_request(request_id))
        by_seq: dict[int, list[Subtask]] = {}
        for subtask in SubtaskRepository(session).list_for_request(request_id):
            by_seq.setdefault(subtask.seq, []).append(subtask)
        session.expunge_all()
    return decisions, by_seq


def step(by_seq: dict[int, list[Subtask]], seq: int) -> Subtask:
    return next(s for s in by_seq[seq] if s.part == 0)


def check_spans(decisions: list[Decision], by_seq: dict[int, list[Subtask]]) -> None:
    """A decision covering ``span`` steps: each of the next span - 1 steps carries a copy (span one
    less, ``span_origin`` = the deciding step, same branch, no time of its own) and ran like it."""
    by_decided = {d.seq: d for d in decisions}
    for decision in decisions:
        assert step(by_seq, decision.seq).executor is decision.executor or decision.fallback_reason is not None
        if "span_origin" in decision.scores:
            continue
        for offset in range(1, decision.span):
            covered = by_decided.get(decision.seq + offset)
            if covered is None:
                assert decision.seq + offset not in by_seq
                break  # the chain finished inside the span
            assert covered.scores == {"span_origin": decision.seq}, f"step {covered.seq} was decided again"
            assert (covered.branch, covered.span, covered.elapsed_ms) == (decision.branch, decision.span - offset, 0.0)
            assert covered.executor is Executor.SLM


def check_hera(decision: Decision, by_seq: dict[int, list[Subtask]], versions: dict[str, str]) -> None:
    assert decision.branch in HERA_BRANCHES
    assert {k: str(v) for k, v in decision.estimator_versions.items()} == versions
    assert decision.kappa is not None
    scores = decision.scores
    if "span_origin" in scores:
        return  # a copy inside an earlier decision's span (check_spans)
    if decision.branch == "sle":
        assert decision.executor is Executor.SLM
        # SLE hands the SLM the current step and the next d (look-ahead d + 1, span d + 1).
        assert decision.span == min(int(scores["dp_d"]) + 1, max(1, MAX_STEPS - decision.seq))
        assert scores["sle_sim"] > decision.kappa
    elif decision.branch == "cd":
        assert decision.span == min(int(scores["cd_j"]), max(1, MAX_STEPS - decision.seq))
        assert scores[f"cd_sim_{int(scores['cd_j'])}"] > decision.kappa
    elif decision.branch == "sd":
        parts = [s for s in by_seq[decision.seq] if s.part > 0]
        assert len(parts) == int(scores["sd_parts"]) >= 2, "an SD pass runs its parts as child rows"
        assert all(part.executor is Executor.SLM for part in parts)
        assert all(scores[f"sd_sim_{i}"] > decision.kappa for i in range(1, len(parts) + 1))
    elif decision.branch == "sse":
        assert decision.span == 1
        assert scores["sse_sim"] > decision.kappa
    elif decision.branch == "urc":
        assert scores["urc"] > 0.7
    else:
        assert decision.executor is Executor.LLM
        assert decision.span == 1


@pytest.mark.timeout(900)
def test_hera_and_every_baseline_through_real_workers(
    trained_estimators: TrainedEstimators,
    runtime: Runtime,
    tiny_run: uuid.UUID,
    tiny_trees: list[RequestTree],
    migrated_postgres_url: str,
    tmp_path: Path,
) -> None:
    seed = runtime.settings.simulator.seed
    tasks = generate("lookup", N_REQUESTS, seed)
    profiled = {tree.request for tree in tiny_trees}
    assert all(task.request in profiled for task in tasks), "the requests must be the profiled ones"
    router_path, plan_path = fit_baselines(runtime, tiny_run, tmp_path)
    raw_plans = json.loads(plan_path.read_text(encoding="utf-8"))["plans"]
    plans = {key: [Executor(e) for e in steps] for key, steps in raw_plans.items()}
    trained_estimators.default_set()  # train before the workers start (minutes on two cores)
    overrides = {
        "HERA_ROUTING__HYBRIDLLM_MODEL_PATH": str(router_path),
        "HERA_ROUTING__ORACLE_PLAN_PATH": str(plan_path),
    }
    # hera-no-urc as well: if the tiny URC sends whole requests to the SLM, SSE..SD still run there.
    policies = ["hera", "hera-no-urc", "all-slm", "all-llm", "random", "minions", "hybridllm", "oracle"]
    with distributed_system(
        migrated_postgres_url, REDIS_URL, tmp_path, seed=seed, overrides=overrides, start=("edge", "cloud")
    ) as system:
        sessions = system.app.hera_runtime.sessions
        versions = register(sessions, trained_estimators)
        # The production router: threads sharing one set of estimators, micro-batched.
        system.start_worker("router", pool="threads", concurrency=4)
        dispatcher = celery_dispatcher(system.app)
        ids = {policy: submit(sessions, dispatcher, tasks, policy) for policy in policies}
        try:
            rows = wait_until_finished(sessions, [i for group in ids.values() for i in group], timeout_s=600)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{system.logs()}") from None

        branches: set[str] = set()
        for policy, group in ids.items():
            for request_id in group:
                row = rows[request_id]
                assert row.status is RequestStatus.SUCCEEDED or "without a final answer" in (row.error or ""), (
                    policy,
                    row.error,
                )
                assert_consistent_record(sessions, request_id)
                decisions, by_seq = records(sessions, request_id)
                assert decisions
                assert all(d.policy == policy for d in decisions)
                if policy.startswith("hera"):
                    check_spans(decisions, by_seq)
                    for decision in decisions:
                        check_hera(decision, by_seq, versions)
                        branches.add(decision.branch)
                elif policy in {"all-slm", "all-llm"}:
                    expected = Executor.SLM if policy == "all-slm" else Executor.LLM
                    assert all(step(by_seq, seq).executor is expected for seq in by_seq)
                elif policy == "oracle":
                    plan = plans[row.input]
                    for decision in decisions:
                        planned = decision.seq < len(plan)
                        assert decision.scores["planned"] == float(planned)
                        assert decision.executor is (plan[decision.seq] if planned else Executor.LLM)
                elif policy == "hybridllm":
                    assert all("score" in d.scores for d in decisions), decisions[0].scores
                else:
                    check_spans(decisions, by_seq)
        # Real (tiny) estimators on real traffic: more than one branch must have fired, or the
        # semantic checks above covered almost nothing.
        assert len(branches) >= 2, branches
