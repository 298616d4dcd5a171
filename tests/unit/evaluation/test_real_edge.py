"""The real-edge study's statistics and its fitted simulator, on synthetic steps with known answers."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hera_router.evaluation.real_edge import (
    PRESET,
    MeasuredStep,
    auc,
    fit_slm,
    signal_auc,
    step_summary,
    write_fitted_preset,
)
from hera_router.simulator.presets import load_behaviour


def _steps(n: int, p_right: float, seed: int = 0) -> list[MeasuredStep]:
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        right = rng.random() < p_right
        prompt = rng.randint(150, 300)
        steps.append(
            MeasuredStep(
                key=f"r{i // 2}",
                hop=1 + i % 2,
                hops=2,
                subtask="s",
                truth="t",
                value="t" if right else "u",
                correct=right,
                difficulty=0.4,
                mean_logprob=rng.gauss(-0.2 if right else -0.9, 0.1),
                first_logprob=-1.0,
                min_logprob=-2.0,
                neg_entropy=rng.random(),
                grounded=1.0,
                latency_s=0.3 + 0.004 * prompt + 0.1 * 5,
                prompt_tokens=prompt,
                completion_tokens=5,
            )
        )
    return steps


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert auc([True, False], [1.0, 0.0]) == 1.0
    assert auc([True, False], [0.0, 1.0]) == 0.0
    assert auc([True, False, True, False], [1.0, 1.0, 0.0, 0.0]) == 0.5
    assert math.isnan(auc([True, True], [1.0, 0.0]))


def test_a_separating_signal_has_a_high_auc_and_an_interval_around_it() -> None:
    steps = _steps(200, 0.5)

    logprob = signal_auc(steps, "mean_logprob", resamples=200)
    noise = signal_auc(steps, "neg_entropy", resamples=200)

    assert logprob["auc"] > 0.95
    assert logprob["ci"][0] <= logprob["auc"] <= logprob["ci"][1]
    assert 0.35 < noise["auc"] < 0.65
    assert signal_auc(steps, "agreement", resamples=10)["n"] == 0


def test_the_fit_recovers_error_rate_logprobs_and_latency(tmp_path: Path) -> None:
    steps = _steps(400, 0.6)

    fitted = fit_slm(steps)

    assert fitted["error_base"] + 0.4 * fitted["error_per_difficulty"] == pytest.approx(0.4, abs=0.06)
    assert fitted["logprob_correct"] == pytest.approx(-0.2, abs=0.03)
    assert fitted["logprob_wrong"] == pytest.approx(-0.9, abs=0.03)
    assert fitted["logprob_noise"] == pytest.approx(0.1, abs=0.03)
    assert fitted["prefill_s_per_token"] == pytest.approx(0.004, rel=0.05)
    behaviour = load_behaviour(PRESET, write_fitted_preset(tmp_path / "fitted.toml", fitted))
    assert behaviour.slm.logprob_wrong == fitted["logprob_wrong"]
    assert behaviour.world.facts_distractors == 4


def test_the_summary_reports_step_and_chain_accuracy() -> None:
    steps = _steps(10, 1.0)
    steps[0].correct = False

    summary = step_summary(steps)

    assert summary["accuracy"] == 0.9
    assert summary["chain_accuracy"] == 0.8
    assert summary["requests"] == 5


def test_the_report_pages_and_results_file_from_measured_steps_and_replayed_worlds(tmp_path: Path) -> None:
    import json

    from hera_router.db.enums import Executor
    from hera_router.evaluation.metrics import summarise
    from hera_router.evaluation.real_edge import RealEdgeConfig, RealEdgeResult, render_report, write_report
    from hera_router.evaluation.world_replay import WorldResult
    from hera_router.training.outcomes import RequestOutcome, StepRecord

    def world(score: float) -> WorldResult:
        def outcome(key: str, executor: Executor, cost: float) -> RequestOutcome:
            steps = (StepRecord(0, Executor.SLM, "sse"), StepRecord(1, executor, "sse", remote_cost_usd=cost))
            return RequestOutcome(key, "facts", "completed", steps, score=score)

        outcomes = {
            "all-slm": [outcome(f"q{i}", Executor.SLM, 0.0) for i in range(4)],
            "all-llm": [outcome(f"q{i}", Executor.LLM, 0.01) for i in range(4)],
        }
        cost = {o.key: o.remote_cost_usd for o in outcomes["all-llm"]}
        rows = [summarise(name, found, cost, resamples=20) for name, found in outcomes.items()]
        return WorldResult("real-edge", 0, rows, {}, outcomes, cost, {}, [], [], ["facts"])

    steps = _steps(20, 0.7)
    signals = [signal_auc(steps, "mean_logprob", resamples=20)]
    result = RealEdgeResult(steps, step_summary(steps), signals, fit_slm(steps), world(1.0), world(0.5), {"x": 1.0})
    config = RealEdgeConfig(out=tmp_path / "out", workdir=tmp_path / "work", samples=1, sample_steps=2)

    text = render_report(result, config)
    write_report(result, config)

    assert "| `all-slm` | 100.0 | 50.0 | -50.0 | 100.0 | 100.0 | 0.00 | 0.00 |" in text
    assert "| `all-llm` | 100.0 | 50.0 | -50.0 | 50.0 | 50.0 | 1.00 | 1.00 |" in text
    assert "| `all-llm` | 50.0 | 0.0 | 0.0 |" in text  # the lookup steps (after the plan) ran on the cloud
    data = json.loads((config.out / "results.json").read_text())
    assert data["real"]["policies"][1]["cost"] == 1.0
    assert data["simulated"]["policies"][0]["accuracy"] == 0.5
