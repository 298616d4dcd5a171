"""The metric definitions on hand-made outcomes (the HERA paper, §5.2)."""

from __future__ import annotations

import math

import pytest

from hera_router.db.enums import Executor
from hera_router.evaluation.metrics import (
    RequestOutcome,
    StepRecord,
    accuracy,
    accuracy_by_family,
    bootstrap_ci,
    branch_counts,
    completion_rate,
    decision_share,
    normalised_cost,
    slm_usage,
    subtasks_per_request,
    summarise,
)

S, L = Executor.SLM, Executor.LLM


def outcome(
    key: str,
    executors: str,
    *,
    score: float = 1.0,
    family: str = "lookup",
    status: str = "completed",
    cost_per_llm_step: float = 1.0,
    branch: str = "x",
    model_s: float = 1.0,
    decision_s: float = 0.0,
) -> RequestOutcome:
    steps = tuple(
        StepRecord(
            seq=i,
            executor=S if c == "s" else L,
            branch=branch,
            remote_cost_usd=cost_per_llm_step if c == "l" else 0.0,
            model_s=model_s,
            decision_s=decision_s,
        )
        for i, c in enumerate(executors)
    )
    return RequestOutcome(key, family, status, steps, "answer", score)  # type: ignore[arg-type]


def test_slm_usage_is_averaged_over_requests_not_pooled_over_steps() -> None:
    rows = [outcome("a", "s"), outcome("b", "slll")]
    # per request 1.0 and 0.25 -> 0.625; pooled over steps it would be 2 / 5 = 0.4
    assert slm_usage(rows) == pytest.approx(0.625)


def test_normalised_cost_is_a_ratio_of_sums_against_all_llm_on_the_same_requests() -> None:
    rows = [outcome("a", "ss"), outcome("b", "sll", cost_per_llm_step=1.5)]
    all_llm = {"a": 2.0, "b": 6.0, "unused": 100.0}
    assert normalised_cost(rows, all_llm) == pytest.approx(3.0 / 8.0)
    # All-LLM against itself is exactly 1.0.
    reference = [outcome("a", "ll"), outcome("b", "llllll")]
    assert normalised_cost(reference, {"a": 2.0, "b": 6.0}) == pytest.approx(1.0)
    # A request without a reference is left out of both sums.
    assert normalised_cost(rows, {"b": 6.0}) == pytest.approx(0.5)


def test_off_tree_and_unavailable_requests_are_counted_apart_from_the_metrics() -> None:
    rows = [
        outcome("a", "ss", score=1.0),
        outcome("b", "l", score=0.0, status="failed"),
        outcome("c", "s", status="off_tree"),
        outcome("d", "", status="unavailable"),
    ]
    assert accuracy(rows) == pytest.approx(0.5)
    assert completion_rate(rows) == pytest.approx(0.5)
    assert subtasks_per_request(rows) == pytest.approx(1.5)
    metrics = summarise("p", rows, {"a": 1.0, "b": 1.0}, resamples=50)
    assert (metrics.requests, metrics.counted, metrics.off_tree, metrics.unavailable) == (4, 2, 1, 1)
    assert metrics.cost == pytest.approx(0.5)


def test_accuracy_per_family_and_f1_scores_average() -> None:
    rows = [
        outcome("a", "s", score=1.0, family="lookup"),
        outcome("b", "s", score=0.0, family="lookup"),
        outcome("c", "l", score=0.5, family="qa"),
    ]
    assert accuracy_by_family(rows) == {"lookup": pytest.approx(0.5), "qa": pytest.approx(0.5)}
    assert accuracy(rows) == pytest.approx(0.5)


def test_decision_share_and_branch_counts() -> None:
    rows = [outcome("a", "ssl", branch="sse", model_s=1.0, decision_s=0.1), outcome("b", "l", branch="fallback")]
    # deciding 0.3 s of 3.3 + 1.0 s
    assert decision_share(rows) == pytest.approx(0.3 / 4.3)
    assert branch_counts(rows) == {"fallback": 1, "sse": 3}


def test_bootstrap_interval_brackets_the_estimate_and_collapses_without_variance() -> None:
    mixed = [outcome(str(i), "s", score=float(i % 2)) for i in range(40)]
    low, high = bootstrap_ci(mixed, accuracy, resamples=400, seed=1)
    assert low < accuracy(mixed) < high
    assert low > 0.3
    assert high < 0.7
    same = [outcome(str(i), "s", score=1.0) for i in range(10)]
    assert bootstrap_ci(same, accuracy, resamples=50) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([], accuracy))


def test_full_cost_is_averaged_over_live_outcomes_and_shown_only_when_present() -> None:
    import math

    from hera_router.evaluation.compare import markdown_table
    from hera_router.evaluation.metrics import RequestOutcome, StepRecord, summarise
    from hera_router.routing.base import Executor

    def outcome(key: str, full: float) -> RequestOutcome:
        step = StepRecord(seq=0, executor=Executor.LLM, branch="fallback", remote_cost_usd=0.5)
        return RequestOutcome(key=key, family="lookup", status="completed", steps=(step,), full_cost_usd=full)

    live = summarise("all-llm", [outcome("a", 1.0), outcome("b", 2.0)], {"a": 0.5, "b": 0.5}, resamples=10)
    replayed = summarise("all-llm", [outcome("a", math.nan)], {"a": 0.5}, resamples=10)
    assert live.full_cost_usd == 1.5
    assert math.isnan(replayed.full_cost_usd)
    assert "full cost $/req" in markdown_table([live])
    assert "1.500000" in markdown_table([live])
    assert "full cost" not in markdown_table([replayed])
