"""The default preset reproduces the shape of the HERA paper's motivation observations (§2).

Orderings and broad ranges only: the numbers are simulated and move with the preset.
"""

from __future__ import annotations

import math

import pytest

from hera_router.simulator.backend import SimBackend
from hera_router.simulator.calibration import (
    CalibrationReport,
    calibrate,
    overlap_similarity,
    render_markdown,
    sl_distances,
)
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.loop import Executor
from hera_router.simulator.world import World


@pytest.fixture(scope="module")
def report(world: World, backends: dict[Executor, SimBackend]) -> CalibrationReport:
    return calibrate(generate_tasks(world, "mixed", 300), world, dict(backends))


def test_accuracy_shape(report: CalibrationReport) -> None:
    slm, llm = report.policy("All-SLM"), report.policy("All-LLM")
    rand, independent = report.policy("Random"), report.policy("Independent (HybridLLM-like)")

    assert 35 <= slm.accuracy <= 55
    assert 87 <= llm.accuracy <= 97
    assert slm.accuracy < rand.accuracy < llm.accuracy
    assert rand.accuracy < independent.accuracy < llm.accuracy
    assert 30 <= rand.slm_share <= 70
    assert 30 <= independent.slm_share <= 70
    assert report.sd_accuracy > slm.accuracy + 5


def test_slm_takes_more_smaller_steps(report: CalibrationReport) -> None:
    ratio = report.policy("All-SLM").steps_correct / report.policy("All-LLM").steps_correct

    assert 1.03 <= ratio <= 1.15


def test_late_swaps_cost_more_than_early_ones(report: CalibrationReport) -> None:
    cost = report.swap_cost

    assert cost["late"] > 1.5 * cost["early"] > 0
    assert cost["late"] > cost["middle"]


def test_distance_grows_in_matched_and_is_often_infinite_in_unmatched(report: CalibrationReport) -> None:
    def finite_mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite)

    def inf_share(group: str, positions: range) -> float:
        values = [v for p in positions for v in report.distance[group].get(p, [])]
        return sum(not math.isfinite(v) for v in values) / len(values)

    matched = report.distance["matched"]
    assert finite_mean(matched[1]) < finite_mean(matched[3] + matched[4] + matched[5])
    assert max(finite_mean(matched[p]) for p in range(1, 7)) < 2
    assert inf_share("unmatched", range(4, 9)) > 0.4
    assert inf_share("matched", range(1, 9)) < 0.05
    assert 20 <= report.matched_share <= 55


def test_confidence_separates_right_from_wrong(report: CalibrationReport) -> None:
    right, wrong, auroc = report.confidence

    assert wrong < right
    assert auroc > 0.6


def test_report_says_simulated(report: CalibrationReport) -> None:
    text = render_markdown(report, command="hera-router world calibrate --n 300")

    assert "SIMULATED" in text
    assert "hera-router world calibrate --n 300" in text


def test_sl_distance_follows_the_papers_figure_5() -> None:
    llm = ["find the director of x", "find the mother of y", "find the city of z"]
    slm = ["open", "find the director of x", "a", "b", "find the mother of y", "find the city of z"]

    assert sl_distances(llm, slm, overlap_similarity) == [1.0, 2.0, 0.0]
    assert sl_distances(["find the mayor of q"], slm, overlap_similarity) == [math.inf]


def test_overlap_similarity_scale() -> None:
    canonical = "Find the mayor of Tarnmouth."

    assert overlap_similarity(canonical, canonical) == 1.0
    assert 0.7 < overlap_similarity(canonical, "Identify the mayor of Tarnmouth.") < 1.0
    assert overlap_similarity(canonical, "Find the mayor of Penstad.") < 0.7
    assert overlap_similarity("Add 5 coins to 17 coins.", "Add 5 coins to 18 coins.") < 0.7
