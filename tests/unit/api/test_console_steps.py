"""The console's step view: which score meets which threshold, the verify escalations, and the
tree flattened with each part after its step and each call on its own step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hera_router.api.console.steps import console_steps, escalations, score_checks
from hera_router.api.schemas import DecisionView, ModelCallSummary, ModelCallView, RequestDetail, SubtaskNode
from hera_router.db.enums import CallStatus, Executor, ModelRole, RequestStatus, SubtaskStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_similarities_meet_kappa_urc_meets_tau_req_and_other_scores_have_no_threshold() -> None:
    checks = score_checks({"urc": 0.4, "sse_sim": 0.71, "cd_sim_2": 0.6, "dp_d": 2.0, "label": "x"}, 0.65, 0.7)

    by_name = {check.name: check for check in checks}
    assert set(by_name) == {"urc", "sse_sim", "cd_sim_2", "dp_d"}  # the non-number is left out
    assert (by_name["urc"].threshold, by_name["urc"].passed, by_name["urc"].source) == (0.7, False, "setting")
    assert (by_name["sse_sim"].threshold, by_name["sse_sim"].passed, by_name["sse_sim"].rule) == (0.65, True, ">")
    assert by_name["cd_sim_2"].passed is False
    assert (by_name["dp_d"].threshold, by_name["dp_d"].passed) == (None, None)


def test_a_similarity_equal_to_kappa_fails_and_hybridllm_s_score_passes_at_its_threshold() -> None:
    checks = score_checks({"sle_sim": 0.6, "score": 0.5, "threshold": 0.5}, 0.6, 0.7)

    by_name = {check.name: check for check in checks}
    assert by_name["sle_sim"].passed is False  # the paper's test is strictly greater
    assert (by_name["score"].passed, by_name["score"].rule, by_name["score"].threshold) == (True, ">=", 0.5)
    assert "threshold" not in by_name


def test_verify_and_ladder_judgements_are_escalations_not_checks() -> None:
    scores = {
        "verify_score": -0.7,
        "verify_threshold": -0.1,
        "verify_accept": 0.0,
        "verify_ms": 3.0,
        "ladder_r0_score": 0.2,
        "ladder_r0_threshold": 0.5,
        "ladder_r0_accept": 0.0,
        "ladder_r1_accept": 1.0,
    }

    found = escalations(scores)

    assert [(e.stage, e.score, e.threshold, e.accepted) for e in found] == [
        ("verify", -0.7, -0.1, False),
        ("ladder rung 0", 0.2, 0.5, False),
        ("ladder rung 1", None, None, True),  # a result without logprobs stores no score
    ]
    assert score_checks(scores, 0.6, 0.7) == []


def _node(seq: int, part: int = 0, children: list[SubtaskNode] | None = None, **kw: object) -> SubtaskNode:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "seq": seq,
        "part": part,
        "parent_id": None,
        "executor": Executor.SLM,
        "branch": "sd",
        "status": SubtaskStatus.SUCCEEDED,
        "text": f"step {seq}.{part}",
        "output": "ok",
        "next_subtask": None,
        "error": None,
        "attempts": 1,
        "problems": [],
        "children": children or [],
    }
    return SubtaskNode.model_validate(values | kw)


def _call(subtask: SubtaskNode, role: ModelRole, tokens: int, cost: float, latency: float) -> ModelCallView:
    return ModelCallView(
        subtask_id=subtask.id,
        backend="sim",
        model=f"sim-{role.value}",
        role=role,
        status=CallStatus.OK,
        tokens_in=tokens,
        tokens_out=1,
        latency_ms=latency,
        cost_usd=cost,
        attempts=1,
        error=None,
    )


def test_console_steps_put_parts_after_their_step_and_sum_each_step_s_own_calls() -> None:
    part_one, part_two = _node(1, 1), _node(1, 2, executor=Executor.LLM)
    step_zero, step_one = _node(0, branch="fallback", executor=Executor.LLM), _node(1, children=[part_one, part_two])
    calls = [
        _call(step_zero, ModelRole.CLOUD, 10, 0.5, 100.0),
        _call(part_one, ModelRole.EDGE, 4, 0.0, 20.0),
        _call(part_two, ModelRole.CLOUD, 6, 0.25, 30.0),
        _call(part_two, ModelRole.CLOUD, 6, 0.25, 40.0),
    ]
    decision = DecisionView(
        seq=1,
        policy="hera",
        executor=Executor.SLM,
        branch="sd",
        span=1,
        scores={"sd_sim_1": 0.9, "sd_sim_2": 0.3},
        kappa=0.62,
        estimator_versions={"sd": 3},
        elapsed_ms=2.5,
        fallback_reason=None,
        created_at=NOW,
    )
    summary = ModelCallSummary(
        calls=4, errors=0, tokens_in=26, tokens_out=4, cost_usd=1.0, latency_ms=190.0, by_role={}, items=calls
    )
    detail = RequestDetail(
        id=uuid.uuid4(),
        batch_id=None,
        custom_id=None,
        status=RequestStatus.SUCCEEDED,
        policy="hera",
        priority=0,
        metadata={},
        input="q",
        final_answer="a",
        error=None,
        gold_answer=None,
        cost_usd=1.0,
        slm_steps=2,
        llm_steps=2,
        current_seq=2,
        attempts=1,
        created_at=NOW,
        updated_at=NOW,
        subtasks=[step_zero, step_one],
        decisions=[decision],
        model_calls=summary,
    )

    steps = console_steps(detail, tau_req=0.7)

    assert [(s.seq, s.part, s.depth) for s in steps] == [(0, 0, 0), (1, 0, 0), (1, 1, 1), (1, 2, 1)]
    assert [len(s.calls) for s in steps] == [1, 0, 1, 2]
    assert [s.cost_usd for s in steps] == [0.5, 0.0, 0.0, 0.5]
    assert steps[3].latency_ms == 70.0
    assert (steps[1].kappa, steps[1].estimator_versions, steps[1].decide_ms) == (0.62, {"sd": 3}, 2.5)
    assert [(c.name, c.passed) for c in steps[1].checks] == [("sd_sim_1", True), ("sd_sim_2", False)]
    assert steps[0].checks == []  # no decision on record for step 0
    assert steps[0].policy is None
    assert all(s.checks == [] for s in steps[2:])  # parts share their step's decision, shown once
