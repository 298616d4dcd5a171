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
        steps.append(MeasuredStep(
            key=f"r{i // 2}", hop=1 + i % 2, hops=2, subtask="s", truth="t", value="t" if right else "u",
            correct=right, difficulty=0.4, mean_logprob=rng.gauss(-0.2 if right else -0.9, 0.1),
            first_logprob=-1.0, min_logprob=-2.0, neg_entropy=rng.random(), grounded=1.0,
            latency_s=0.3 + 0.004 * prompt + 0.1 * 5, prompt_tokens=prompt, completion_tokens=5,
        ))  # fmt: skip
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
