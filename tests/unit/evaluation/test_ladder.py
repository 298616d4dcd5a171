"""The simulated N-model ladder evaluation (SIMULATED), on a handful of requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.backends.base import GenerationParams
from hera_router.config import load_settings
from hera_router.estimators.ladder_pair import LadderStarts
from hera_router.evaluation.ladder import (
    DEFAULT_START_ENCODER,
    DEFAULT_TIERS,
    ESTIMATED,
    TOLERANCES,
    Rung,
    cost_ordered,
    evaluate_world,
    profile,
    run_request,
    write_report,
)
from hera_router.routing.ladder import Ladder
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate
from hera_router.training.ladder import save_starts


def _rungs(seed: int = 3) -> list[Rung]:
    return [
        Rung(
            tier,
            SimBackend(
                "slm" if tier.role == "edge" or tier.name == "cheap-cloud" else "llm",
                tier.backend.model,
                seed,
                tier=tier.name,
            ),
        )
        for tier in DEFAULT_TIERS
    ]


def test_the_mid_and_cloud_tiers_are_todays_slm_and_llm() -> None:
    tasks = generate("mixed", 3, 3)
    from hera_router.agent.format import render_step_messages

    for task in tasks:
        messages = render_step_messages(task.request, [], task.request, 0)
        for role, tier in (("slm", "mid"), ("llm", "cloud")):
            plain = SimBackend(role, "m", 3).generate(messages, GenerationParams())  # type: ignore[arg-type]
            tiered = SimBackend(role, "m", 3, tier=tier).generate(messages, GenerationParams())  # type: ignore[arg-type]
            assert plain.text == tiered.text
    with pytest.raises(ValueError, match="built on"):
        SimBackend("llm", "m", 3, tier="tiny")


def test_profiling_is_linear_in_the_rungs_and_tiers_are_ordered_by_accuracy() -> None:
    settings = load_settings(models=[tier.model_dump() for tier in DEFAULT_TIERS])
    steps, calls, per_call = profile(generate("mixed", 12, 3), _rungs(), settings)
    assert calls == 4 * len(steps)  # every rung once per profiled step, no tree
    accuracy = [sum(s.correct[k] for s in steps) / len(steps) for k in range(4)]
    assert accuracy[0] < accuracy[1] < accuracy[3]  # tiny < mid < cloud (SIMULATED)
    assert per_call[3] > per_call[2]  # the cloud model costs more per call than the cheap one
    order = cost_ordered(steps, per_call)
    assert order[-1] == 3


def test_the_ladder_escalates_one_rung_at_a_time() -> None:
    settings = load_settings(models=[tier.model_dump() for tier in DEFAULT_TIERS])
    rungs = _rungs()
    used: list[str] = []
    for rung in rungs:
        original = rung.backend.generate

        def spy(messages, params, original=original, name=rung.tier.name):  # type: ignore[no-untyped-def]
            used.append(name)
            return original(messages, params)

        rung.backend.generate = spy  # type: ignore[method-assign]
    reject_all = Ladder(tuple(r.tier.name for r in rungs), (0.0, 0.0, 0.0))  # logprobs are < 0: always climb
    [task] = generate("lookup", 1, 3)
    outcome = run_request(task, rungs, settings, start=lambda _s, _t: 0, ladder=reject_all)
    assert used[:4] == ["tiny", "mid", "cheap-cloud", "cloud"]
    assert outcome.escalations == 3 * outcome.steps
    assert outcome.full_cost >= outcome.paper_cost > 0


def test_a_small_world_reports_every_policy_labelled_simulated(tmp_path: Path) -> None:
    # One world for every assertion: evaluate_world is the slow part.
    report = evaluate_world("default", 3, requests=12, profile_requests=12)
    policies = {r.policy for r in report.results}
    assert {
        "tiny alone",
        "mid alone",
        "cheap-cloud alone",
        "cloud alone",
        "HERA ladder",
        "two-model HERA",
        "Random over the ladder",
        "HybridLLM over the ladder",
        "pair tiny+mid",
    } <= policies
    assert all(r.full_cost >= r.paper_cost - 1e-15 for r in report.results)
    assert "best_fixed_pair" in report.headline
    path = write_report([report], tmp_path)
    text = path.read_text()
    assert "SIMULATED" in text
    assert "| HERA ladder |" in text
    assert "## Summary (SIMULATED)" in text
    assert list(tmp_path.glob("ladder-*.png"))
    # The ladder with the per-pair start estimators, and their artifact.
    started = [r for r in report.results if r.policy == ESTIMATED]
    assert len(started) == len(TOLERANCES)
    assert all(sum(r.start_share.values()) == pytest.approx(1.0) for r in started)
    assert [h["pair"] for h in report.pair_heads] == ["tiny>mid", "mid>cheap-cloud", "cheap-cloud>cloud"]
    # The report writes no production artifact; saving it is the training step's.
    assert not list(tmp_path.glob("starts-*.json"))
    path = save_starts(report.starts, tmp_path, report.preset, report.seed)
    assert path.name == "starts-default-seed3.json"
    starts = LadderStarts.load(path)
    assert starts.names == ("tiny", "mid", "cheap-cloud", "cloud")
    assert starts.encoder == DEFAULT_START_ENCODER
    assert starts.meta["tolerance"] == 0.01
    assert "Start rungs of the HERA ladder + pair estimators" in text


def test_a_tier_named_in_hera_models_runs_as_that_simulated_tier_in_the_pipeline() -> None:
    from hera_router.backends.registry import build_raw_backend as create_backend

    tiers = [tier.model_dump() for tier in DEFAULT_TIERS]
    settings = load_settings(models=tiers, edge={"model": "sim-tiny"}, cloud={"model": "sim-cheap"})
    edge, cloud = create_backend(settings, "edge", settings.edge), create_backend(settings, "cloud", settings.cloud)
    assert isinstance(edge, SimBackend)
    assert isinstance(cloud, SimBackend)
    assert edge.simulated.stream == "tiny"
    assert cloud.simulated.stream == "cheap-cloud"
    assert settings.price_of("sim-cheap").input_per_mtok == 0.15
    plain = create_backend(load_settings(), "edge", load_settings().edge)
    assert isinstance(plain, SimBackend)
    assert plain.simulated.stream == "slm"
