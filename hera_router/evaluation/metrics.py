"""The HERA paper's evaluation metrics (§5.2) over per-request outcomes.

One :class:`RequestOutcome` per request, whether it was replayed on a profiled tree
(``training/replay.py``) or run live through the pipeline (``evaluation/live.py``); every metric
below is a function of a list of them, so replay and live numbers are computed by the same code.

Definitions:

* **accuracy**: mean score of the final answer against the gold answer with the request's metric
  (``agent/scoring.py``: exact match for entities, numeric tolerance for numbers, token F1 where
  the metric is ``f1``); an unfinished request scores 0. Reported overall and per family.
* **SLM usage**: the share of a request's executed steps that ran on the SLM, averaged over
  requests (not pooled over steps: a long request counts as much as a short one).
* **remote cost**: the USD of the steps run on the cloud LLM (the SLM is free, as in the paper),
  normalised by the All-LLM remote cost of the *same* requests, so All-LLM = 1.0. A ratio of sums
  (the paper's "per 100 requests").
* **completion rate**: the share of requests that ended with an answer within the step limit.
* **subtasks per request**: executed steps (decomposed parts count one each, as in ``run``).
* **latency**: per request, the model time of its steps plus the time spent deciding (the chain is
  sequential); the decision share is decision time over that total.
* **branches**: HERA's decisions per branch (urc, sse, sle, cd, sd, fallback), counting each
  step a decision covers (a span of 3 counts 3).

Requests that a replay could not finish inside the profiled tree (``off_tree``) are counted and
left out of every other metric; see ``replay.py``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hera_router.evaluation import stats
from hera_router.evaluation.render import clean
from hera_router.training.outcomes import RequestOutcome, Status, StepRecord, counted, slm_usage

__all__ = ["RequestOutcome", "Status", "StepRecord", "counted", "slm_usage"]

# -- the metric functions ------------------------------------------------------------------------


def accuracy(outcomes: Sequence[RequestOutcome]) -> float:
    rows = counted(outcomes)
    return statistics.fmean(o.score for o in rows) if rows else math.nan


def accuracy_by_family(outcomes: Sequence[RequestOutcome]) -> dict[str, float]:
    families = sorted({o.family for o in counted(outcomes)})
    return {family: accuracy([o for o in outcomes if o.family == family]) for family in families}


def normalised_cost(outcomes: Sequence[RequestOutcome], all_llm_cost: Mapping[str, float]) -> float:
    """Remote cost relative to All-LLM on the same requests (All-LLM = 1.0).

    ``all_llm_cost`` maps a request key to what All-LLM spent on it; requests without a reference
    are left out of both sums, so the ratio always compares the same requests.
    """
    rows = [o for o in counted(outcomes) if o.key in all_llm_cost]
    reference = sum(all_llm_cost[o.key] for o in rows)
    return sum(o.remote_cost_usd for o in rows) / reference if reference > 0 else math.nan


def completion_rate(outcomes: Sequence[RequestOutcome]) -> float:
    rows = counted(outcomes)
    return sum(o.status == "completed" for o in rows) / len(rows) if rows else math.nan


def subtasks_per_request(outcomes: Sequence[RequestOutcome]) -> float:
    rows = counted(outcomes)
    return statistics.fmean(o.n_steps for o in rows) if rows else math.nan


def mean_latency_s(outcomes: Sequence[RequestOutcome]) -> float:
    rows = counted(outcomes)
    return statistics.fmean(o.latency_s for o in rows) if rows else math.nan


def decision_share(outcomes: Sequence[RequestOutcome]) -> float:
    """Time spent deciding over end-to-end time, pooled over requests."""
    rows = counted(outcomes)
    total = sum(o.latency_s for o in rows)
    return sum(o.decision_s for o in rows) / total if total > 0 else math.nan


def branch_counts(outcomes: Sequence[RequestOutcome]) -> dict[str, int]:
    counts = Counter(step.branch for o in counted(outcomes) for step in o.steps)
    return dict(sorted(counts.items()))


# -- bootstrap confidence intervals over requests -----------------------------------------------

Statistic = Callable[[Sequence[RequestOutcome]], float]


def bootstrap_ci(
    outcomes: Sequence[RequestOutcome],
    statistic: Statistic,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the counted requests (``stats``' rule)."""
    return stats.bootstrap_ci(counted(outcomes), statistic, resamples=resamples, level=level, seed=seed)


# -- one policy's numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyMetrics:
    """Every metric of one policy on one request set, with bootstrap intervals where they matter."""

    policy: str
    requests: int
    counted: int
    off_tree: int
    unavailable: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    accuracy_by_family: dict[str, float]
    slm_usage: float
    slm_usage_ci: tuple[float, float]
    cost: float
    """Remote cost normalised to All-LLM = 1.0."""
    cost_ci: tuple[float, float]
    completion_rate: float
    subtasks_per_request: float
    latency_s: float
    decision_share: float
    branches: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Mode-specific counters (replay: extended steps, SD approximations)."""
    full_cost_usd: float = math.nan
    """Mean USD per counted request on the full cost model (live runs; NaN in replay). ``cost`` is
    the paper's: remote (cloud token) cost relative to All-LLM."""

    def to_json(self) -> dict[str, Any]:
        return {name: clean(getattr(self, name)) for name in self.__dataclass_fields__}


def summarise(
    policy: str,
    outcomes: Sequence[RequestOutcome],
    all_llm_cost: Mapping[str, float],
    *,
    resamples: int = 1000,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> PolicyMetrics:
    def cost(rows: Sequence[RequestOutcome]) -> float:
        return normalised_cost(rows, all_llm_cost)

    return PolicyMetrics(
        policy=policy,
        requests=len(outcomes),
        counted=len(counted(outcomes)),
        off_tree=sum(o.status == "off_tree" for o in outcomes),
        unavailable=sum(o.status == "unavailable" for o in outcomes),
        accuracy=accuracy(outcomes),
        accuracy_ci=bootstrap_ci(outcomes, accuracy, resamples=resamples, seed=seed),
        accuracy_by_family=accuracy_by_family(outcomes),
        slm_usage=slm_usage(outcomes),
        slm_usage_ci=bootstrap_ci(outcomes, slm_usage, resamples=resamples, seed=seed),
        cost=cost(outcomes),
        cost_ci=bootstrap_ci(outcomes, cost, resamples=resamples, seed=seed),
        completion_rate=completion_rate(outcomes),
        subtasks_per_request=subtasks_per_request(outcomes),
        latency_s=mean_latency_s(outcomes),
        decision_share=decision_share(outcomes),
        branches=branch_counts(outcomes),
        extra=dict(extra or {}),
        full_cost_usd=mean_full_cost(outcomes),
    )


def mean_full_cost(outcomes: Sequence[RequestOutcome]) -> float:
    """Mean full cost per counted request (NaN when no outcome carries one)."""
    rows = [o.full_cost_usd for o in counted(outcomes) if not math.isnan(o.full_cost_usd)]
    return sum(rows) / len(rows) if rows else math.nan
