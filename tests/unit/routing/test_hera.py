"""The HERA policy, one branch at a time, with scripted stub estimators (tests/unit/routing/stubs.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, MissingEstimatorsError, Policy, RoutingContext
from hera_router.routing.estimators import Estimators, cosine
from hera_router.routing.hera import VARIANTS, HeraPolicy, kappa
from hera_router.routing.registry import create_policy, policy_names
from tests.unit.routing.stubs import (
    BASE,
    FixedDecomposer,
    FixedScorer,
    LLMPredictor,
    SLMPredictor,
    estimators,
    with_similarity,
)

EPS = 1e-4  # float32 embeddings reproduce a scripted cosine to ~1e-7
LOW = 0.1  # clearly below every κ
HIGH = 0.95  # clearly above every κ


def context(seq: int = 0, max_steps: int = 15) -> RoutingContext:
    return RoutingContext(
        request_id="r1",
        request="the request",
        current="the request" if seq == 0 else f"step {seq}",
        seq=seq,
        max_steps=max_steps,
    )


def hera(**settings: Any) -> HeraPolicy:
    return HeraPolicy(RoutingSettings(**settings))


def decide(policy: Policy, bundle: Estimators, seq: int = 0, max_steps: int = 15) -> Decision:
    return policy.decide(context(seq, max_steps), bundle)


# -- κ ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "step_id", "expected"),
    [(0, 0, 0.60), (0, 1, 0.62), (0, 5, 0.70), (0, 9, 0.70), (1, 1, 0.62), (1, 5, 0.70), (1, 9, 0.70)],
)
def test_kappa_schedule(origin: int, step_id: int, expected: float) -> None:
    assert kappa(step_id - origin, RoutingSettings(id_origin=origin)) == expected  # exact: κ is rounded


@pytest.mark.parametrize(
    ("origin", "step_id"),
    [(o, i) for o in (0, 1) for i in (0, 1, 5, 9) if i >= o],  # no ID 0 when IDs start at 1
)
def test_sse_passes_just_above_kappa_and_fails_just_below(origin: int, step_id: int) -> None:
    seq = step_id - origin
    k = 0.6 + 0.02 * min(step_id, 5)
    policy = hera(id_origin=origin)
    above = decide(policy, estimators(slm=[k + EPS]), seq)
    assert (above.branch, above.executor, above.span) == ("sse", Executor.SLM, 1)
    assert above.kappa == pytest.approx(k)
    assert above.scores["sse_sim"] == pytest.approx(k + EPS, abs=1e-6)
    below = decide(policy, estimators(slm=[k - EPS]), seq)
    assert below.branch == "fallback"
    assert below.executor is Executor.LLM


def test_similarity_equal_to_kappa_is_not_similar() -> None:
    # "similar" means sim > κ: with κ set to the stub's exact cosine, SSE fails; one ulp lower, it passes.
    exact = cosine(with_similarity(0.5), BASE)
    at = decide(hera(position_aware_kappa=False, kappa_fixed=exact), estimators(slm=[0.5], d=None))
    assert at.branch == "fallback"
    below = decide(hera(position_aware_kappa=False, kappa_fixed=math.nextafter(exact, 0)), estimators(slm=[0.5]))
    assert below.branch == "sse"


# -- URC -------------------------------------------------------------------------------------------


def test_urc_pass_sends_the_rest_of_the_request_to_the_slm_without_consulting_the_predictors() -> None:
    bundle = estimators(urc=0.71, slm=[HIGH])
    decision = decide(hera(), bundle, seq=3, max_steps=15)
    assert (decision.branch, decision.executor, decision.span) == ("urc", Executor.SLM, 12)
    assert decision.scores == {"urc": 0.71}
    assert isinstance(bundle.sp_slm, SLMPredictor)
    assert not bundle.sp_slm.calls
    assert isinstance(bundle.sp_llm, LLMPredictor)
    assert not bundle.sp_llm.calls


def test_urc_at_the_threshold_does_not_pass() -> None:
    decision = decide(hera(), estimators(urc=0.7, slm=[HIGH]))
    assert decision.branch == "sse"
    assert decision.scores["urc"] == 0.7


def test_no_estimators_is_cold_start_mode_for_hera_and_an_error_for_its_ablations() -> None:
    decision = hera().decide(context())
    assert decision.branch == "cold-start-verify"
    assert decision.executor is Executor.SLM
    with pytest.raises(MissingEstimatorsError, match="bootstrap"):
        HeraPolicy(RoutingSettings(use_sd=False), name="hera-no-sd").decide(context())


# -- SLE -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("convention", "script", "branch", "span"),
    [
        # d = 2. "d+1" compares the 3rd SLM prediction, "d" the 2nd; either way the span is d + 1.
        ("d+1", [LOW, LOW, HIGH], "sle", 3),
        ("d", [LOW, HIGH, LOW], "sle", 3),
        # The other convention's prediction fails SLE; CD then finds the pair that converged.
        ("d+1", [LOW, HIGH, LOW], "cd", 2),
        ("d", [LOW, LOW, HIGH], "cd", 3),
    ],
)
def test_sle_lookahead_conventions_and_span(convention: str, script: list[float], branch: str, span: int) -> None:
    decision = decide(hera(sle_lookahead=convention), estimators(slm=script, d=2))
    assert (decision.branch, decision.executor, decision.span) == (branch, Executor.SLM, span)
    assert decision.scores["dp_d"] == 2.0
    assert decision.scores["sle_lookahead"] == (3.0 if convention == "d+1" else 2.0)


def test_sle_with_infinite_distance_fails_and_records_it() -> None:
    decision = decide(hera(use_cd=False, use_sd=False), estimators(slm=[LOW, HIGH, HIGH], d=None))
    assert decision.branch == "fallback"
    assert decision.scores["dp_d"] == -1.0
    assert "sle_sim" not in decision.scores


def test_sle_span_is_clipped_to_the_steps_left() -> None:
    decision = decide(hera(), estimators(slm=[LOW, LOW, LOW, HIGH], d=3), seq=13, max_steps=15)
    assert (decision.branch, decision.span) == ("sle", 2)


def test_sle_and_cd_share_one_slm_rollout() -> None:
    bundle = estimators(slm=[LOW] * 5, d=1)
    decide(hera(use_sd=False), bundle)
    assert isinstance(bundle.sp_slm, SLMPredictor)
    assert bundle.sp_slm.calls == [1, 5]  # SSE's single step, then max(look-ahead, horizon) once


# -- CD --------------------------------------------------------------------------------------------


def test_cd_picks_the_last_convergence_point_within_the_horizon() -> None:
    script = [LOW, HIGH, LOW, HIGH, LOW, HIGH]  # converges at j = 2, 4 and 6; H = 5
    decision = decide(hera(cd_horizon=5), estimators(slm=script, d=None))
    assert (decision.branch, decision.executor, decision.span) == ("cd", Executor.SLM, 4)
    assert decision.scores["cd_j"] == 4.0
    assert sorted(k for k in decision.scores if k.startswith("cd_sim_")) == [f"cd_sim_{j}" for j in range(1, 6)]
    wider = decide(hera(cd_horizon=6), estimators(slm=script, d=None))
    assert wider.span == 6
    inclusive = decide(hera(cd_horizon=5, cd_include_convergence=True), estimators(slm=script, d=None))
    assert inclusive.span == 5


def test_cd_horizon_stops_at_the_step_limit() -> None:
    script = [LOW, LOW, LOW, HIGH]
    decision = decide(hera(cd_horizon=5, use_sd=False), estimators(slm=script, d=None), seq=12, max_steps=15)
    assert decision.branch == "fallback"  # j = 4 lies beyond the 3 steps left
    assert "cd_sim_4" not in decision.scores


# -- SD --------------------------------------------------------------------------------------------


def test_sd_all_parts_pass_runs_the_parts_on_the_slm() -> None:
    parts = {"look up A": [HIGH], "look up B": [HIGH], "combine": [HIGH]}
    decision = decide(hera(), estimators(slm=[LOW], parts=parts))
    assert (decision.branch, decision.executor, decision.span) == ("sd", Executor.SLM, 1)
    assert decision.parts == ("look up A", "look up B", "combine")
    assert decision.scores["sd_parts"] == 3.0
    assert [decision.scores[f"sd_sim_{k}"] for k in (1, 2, 3)] == [pytest.approx(HIGH, abs=1e-6)] * 3


def test_sd_one_failing_part_sends_the_original_step_to_the_llm() -> None:
    parts = {"look up A": [HIGH], "look up B": [LOW], "combine": [HIGH]}
    decision = decide(hera(), estimators(slm=[LOW], parts=parts))
    assert (decision.branch, decision.executor, decision.parts) == ("fallback", Executor.LLM, ())
    assert "sd_sim_2" in decision.scores
    assert "sd_sim_3" not in decision.scores  # all-or-nothing: the checks stop at the first failure


def test_partial_sd_routes_each_part_by_its_own_test() -> None:
    parts = {"look up A": [HIGH], "look up B": [LOW], "combine": [HIGH]}
    decision = decide(hera(sd_mode="partial"), estimators(slm=[LOW], parts=parts))
    assert (decision.branch, decision.executor) == ("sd", Executor.SLM)
    assert decision.parts == ("look up A", "look up B", "combine")
    assert decision.part_executors == (Executor.SLM, Executor.LLM, Executor.SLM)
    assert [decision.scores[f"sd_slm_{k}"] for k in (1, 2, 3)] == [1.0, 0.0, 1.0]  # on record, replayable


def test_partial_sd_with_no_passing_part_sends_the_step_to_the_llm_whole() -> None:
    parts = {"look up A": [LOW], "look up B": [LOW]}
    decision = decide(hera(sd_mode="partial"), estimators(slm=[LOW], parts=parts))
    assert (decision.branch, decision.executor, decision.parts, decision.part_executors) == (
        "fallback",
        Executor.LLM,
        (),
        (),
    )


def test_all_or_nothing_sd_names_no_part_executors() -> None:
    parts = {"look up A": [HIGH], "look up B": [HIGH]}
    assert decide(hera(), estimators(slm=[LOW], parts=parts)).part_executors == ()


def test_a_single_part_is_no_decomposition() -> None:
    decision = decide(hera(), estimators(slm=[LOW], parts={"the same step": [HIGH]}))
    assert decision.branch == "fallback"
    assert decision.scores["sd_parts"] == 1.0


def test_blank_parts_are_dropped() -> None:
    bundle = estimators(slm=[LOW], parts={"a": [HIGH], "b": [HIGH]})
    assert isinstance(bundle.sd, FixedDecomposer)
    bundle.sd.parts = ["a", "  ", "b"]
    assert decide(hera(), bundle).parts == ("a", "b")


# -- fallback and the record -----------------------------------------------------------------------


def test_fallback_records_every_score_kappa_versions_and_time() -> None:
    decision = decide(hera(), estimators(slm=[LOW] * 5, d=1, parts={"a": [HIGH], "b": [LOW]}), seq=2)
    assert (decision.branch, decision.executor, decision.span, decision.policy) == (
        "fallback",
        Executor.LLM,
        1,
        "hera",
    )
    assert set(decision.scores) == {
        "urc",
        "sse_sim",
        "sp_cos",
        "dp_d",
        "sle_lookahead",
        "sle_sim",
        *(f"cd_sim_{j}" for j in range(1, 6)),
        "sd_parts",
        "sd_sim_1",
        "sd_sim_2",
    }
    assert decision.kappa == 0.66  # seq 2 is ID 3
    assert decision.estimator_versions["sp_slm"] == "sp-slm-test"
    assert decision.elapsed_ms > 0
    json.dumps(dict(decision.scores), allow_nan=False)  # storable as JSON in Postgres


def test_versions_fall_back_to_the_handles_when_the_bundle_has_none() -> None:
    bundle = estimators(urc=0.9)
    bare = Estimators(urc=bundle.urc, sp_slm=bundle.sp_slm, sp_llm=bundle.sp_llm, dp=bundle.dp, sd=bundle.sd)
    assert decide(hera(), bare).estimator_versions["urc"] == "urc-test"


# -- ablations -------------------------------------------------------------------------------------

# Each scenario makes the stage under test pass and the next one too: the full policy decides at the
# stage, the ablation at the next stage, and the ablation leaves no score of its stage behind.
SCENARIOS: list[tuple[str, dict[str, Any], str, str, set[str]]] = [
    ("hera-no-urc", {"urc": 0.9, "slm": [HIGH]}, "urc", "sse", {"urc"}),
    ("hera-no-sle", {"slm": [LOW, HIGH], "d": 1}, "sle", "cd", {"dp_d", "sle_sim", "sle_lookahead"}),
    ("hera-no-cd", {"slm": [LOW, LOW, HIGH], "parts": {"a": [HIGH], "b": [HIGH]}}, "cd", "sd", {"cd_sim_1", "cd_j"}),
    ("hera-no-sd", {"slm": [LOW], "parts": {"a": [HIGH], "b": [HIGH]}}, "sd", "fallback", {"sd_parts", "sd_sim_1"}),
    ("hera-urc-only", {"slm": [HIGH]}, "sse", "fallback", {"sse_sim", "dp_d", "cd_sim_1", "sd_parts"}),
]


@pytest.mark.parametrize(("name", "scenario", "full_branch", "ablated_branch", "absent"), SCENARIOS)
def test_each_ablation_removes_exactly_its_stage(
    name: str, scenario: dict[str, Any], full_branch: str, ablated_branch: str, absent: set[str]
) -> None:
    settings = RoutingSettings()
    full = decide(create_policy("hera", settings), estimators(**scenario))
    ablated = decide(create_policy(name, settings), estimators(**scenario))
    assert full.branch == full_branch
    assert ablated.branch == ablated_branch
    assert ablated.policy == name
    assert not absent & set(ablated.scores)
    # Nothing else changed: the stages before the removed one computed the same scores.
    shared = {k: v for k, v in full.scores.items() if k in ablated.scores}
    assert shared == {k: ablated.scores[k] for k in shared}


def test_urc_only_keeps_the_urc_fast_path() -> None:
    decision = decide(create_policy("hera-urc-only", RoutingSettings()), estimators(urc=0.9))
    assert (decision.branch, decision.span) == ("urc", 15)


def test_fixed_kappa_removes_position_awareness() -> None:
    settings = RoutingSettings()
    early = estimators(slm=[0.65])  # above κ(ID 1) = 0.62, below the fixed 0.7
    assert decide(create_policy("hera", settings), early).branch == "sse"
    fixed = decide(create_policy("hera-fixed-kappa", settings), early)
    assert (fixed.branch, fixed.kappa) == ("fallback", 0.7)
    assert all(kappa(seq, settings.model_copy(update={"position_aware_kappa": False})) == 0.7 for seq in range(12))


def test_the_papers_cumulative_ablations() -> None:
    settings = RoutingSettings()
    cd_would_pass = estimators(slm=[LOW, LOW, HIGH], d=None)
    assert decide(create_policy("hera-urc-sse-sle", settings), cd_would_pass).branch == "fallback"
    sle_would_pass = estimators(slm=[LOW, HIGH], d=1)
    assert decide(create_policy("hera-urc-sse", settings), sle_would_pass).branch == "fallback"


def test_the_ablation_switches_are_settings_too() -> None:
    policy = create_policy("hera", RoutingSettings(use_sd=False))
    assert decide(policy, estimators(slm=[LOW], parts={"a": [HIGH], "b": [HIGH]})).branch == "fallback"


def test_every_variant_is_registered() -> None:
    assert set(VARIANTS) <= set(policy_names())
    assert {
        "hera",
        "hera-no-sd",
        "hera-no-cd",
        "hera-no-sle",
        "hera-urc-only",
        "hera-no-urc",
        "hera-fixed-kappa",
    } <= set(VARIANTS)
    assert {"minions", "hybridllm", "oracle", "all-slm", "all-llm", "random"} <= set(policy_names())


def test_the_urc_is_asked_about_the_request_not_the_step() -> None:
    scorer = FixedScorer(0.1)
    bundle = estimators(slm=[HIGH])
    bundle = Estimators(urc=scorer, sp_slm=bundle.sp_slm, sp_llm=bundle.sp_llm, dp=bundle.dp, sd=bundle.sd)
    decide(hera(), bundle, seq=4)
    assert scorer.calls == 1


def test_routing_imports_neither_celery_nor_sqlalchemy() -> None:
    code = (
        "import sys, hera_router.routing.registry, hera_router.routing.hera, hera_router.routing.oracle, "
        "hera_router.routing.hybridllm; print(sorted(m for m in ('celery', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
