"""The evaluation core's statistics and rendering: one bootstrap rule, aligned columns, the
equal-share interpolation, and the writers every study uses."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest

from hera_router.db.enums import Executor
from hera_router.evaluation import metrics, stats
from hera_router.evaluation.render import clean, points_ci, table, write_results
from hera_router.training.outcomes import RequestOutcome, StepRecord


def outcome(key: str, score: float, slm_steps: int, llm_steps: int, status: str = "completed") -> RequestOutcome:
    steps = [StepRecord(i, Executor.SLM, "sse") for i in range(slm_steps)]
    steps += [StepRecord(slm_steps + i, Executor.LLM, "fallback", remote_cost_usd=0.01) for i in range(llm_steps)]
    return RequestOutcome(key, "lookup", status, tuple(steps), score=score)  # type: ignore[arg-type]


def test_the_bootstrap_is_the_documented_rule_and_repeats_with_its_seed() -> None:
    values = [float(v) for v in range(20)]
    low, high = stats.bootstrap_ci(values, lambda xs: float(np.mean(xs)), resamples=400, seed=3)
    # The rule written out: numpy's generator, n indices per draw, linear quantiles at 2.5/97.5 %.
    draws = np.random.default_rng(3).integers(0, 20, size=(400, 20))
    means = np.array(values)[draws].mean(axis=1)
    assert (low, high) == (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))
    assert low < 9.5 < high
    assert stats.bootstrap_ci(values, lambda xs: float(np.mean(xs)), resamples=400, seed=3) == (low, high)
    assert stats.bootstrap_ci(values, lambda xs: float(np.mean(xs)), resamples=400, seed=4) != (low, high)


def test_draws_without_a_finite_statistic_are_left_out_and_none_give_nan() -> None:
    assert stats.percentile_interval([math.nan, math.inf, 1.0, 3.0]) == (1.05, 2.95)
    assert all(math.isnan(v) for v in stats.percentile_interval([math.nan]))
    assert all(math.isnan(v) for v in stats.bootstrap_ci([], len))


def test_metrics_intervals_resample_only_counted_requests() -> None:
    rows = [outcome(f"r{i}", float(i % 2), 1, 1) for i in range(10)]
    rows.append(outcome("off", 1.0, 1, 0, status="off_tree"))
    low, high = metrics.bootstrap_ci(rows, metrics.accuracy, resamples=200)
    assert (low, high) == stats.bootstrap_ci(rows[:10], metrics.accuracy, resamples=200)
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_common_columns_align_the_requests_every_side_counted() -> None:
    a = [outcome("x", 1.0, 2, 0), outcome("y", 0.0, 1, 1), outcome("z", 1.0, 0, 2)]
    b = [outcome("z", 0.0, 2, 0), outcome("x", 1.0, 1, 1), outcome("y", 0.0, 0, 1, status="off_tree")]
    left, right = stats.common_columns(a, b)
    assert left.keys == right.keys == ["x", "z"]
    assert left.point() == (0.5, 1.0)
    assert right.point() == (0.75, 0.5)
    assert left.point(np.array([0, 0])) == (1.0, 1.0)


def test_accuracy_at_share_interpolates_the_curve_and_flags_its_ends() -> None:
    low = stats.Columns.of([outcome("x", 0.0, 2, 0), outcome("y", 1.0, 2, 0)])  # share 1.0, accuracy 0.5
    high = stats.Columns.of([outcome("x", 1.0, 0, 2), outcome("y", 1.0, 0, 2)])  # share 0.0, accuracy 1.0
    assert stats.accuracy_at_share(0.25, [low, high]) == (pytest.approx(0.875), True)
    assert stats.accuracy_at_share(1.5, [low, high]) == (0.5, False)
    assert stats.paired_draws(0, 100, 0).shape == (0, 0)


def test_the_table_writer_and_the_results_file(tmp_path: Path) -> None:
    assert table(["a", "b"], [["x|y", 1]]) == "| a | b |\n|---|---|\n| x/y | 1 |"
    raw = {1: (math.nan, math.inf, 0.1234567), "p": Path("/a"), "u": uuid.UUID(int=0)}
    assert clean(raw) == {"1": [None, None, 0.123457], "p": "/a", "u": str(uuid.UUID(int=0))}
    write_results(tmp_path / "r.json", {"x": math.nan})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": None}
    assert points_ci(0.05, (None, 0.1)) == "+5.0 [–, +10.0]"
