"""Every policy and ablation side by side: one table, markdown and JSON, with bootstrap intervals.

The policies are created from the registry with the evaluation's routing settings, replayed on
the same profile (sharing one estimator cache), and summarised by ``metrics.summarise`` against
the same All-LLM reference costs. Policies a replay cannot evaluate show as unavailable with the
reason; run them live instead (``hera-router eval live``). Profiles keep each call's mean token
logprob, so ``minions`` and the verify stage replay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hera_router.config import RoutingSettings
from hera_router.evaluation.metrics import PolicyMetrics, RequestOutcome, summarise
from hera_router.evaluation.render import pct, pct_ci, ratio_ci, table
from hera_router.routing.hera import VARIANTS
from hera_router.routing.registry import create_policy
from hera_router.training.replay import Replayer, ReplayStats

BASELINES = ("all-slm", "all-llm", "random", "hybridllm", "minions", "oracle", "hera-paper", "hera")
"""The policy table's rows, in the order the paper discusses them."""
_ABLATION_ORDER = (
    "hera",
    "hera-paper",
    "hera-no-verify",
    "hera-no-sd",
    "hera-urc-sse-sle",
    "hera-urc-sse",
    "hera-urc-only",
    "hera-no-urc",
    "hera-no-cd",
    "hera-no-sle",
    "hera-fixed-kappa",
    "hera-verify-only",
    "hera-uncalibrated",
)
ABLATIONS = (*(n for n in _ABLATION_ORDER if n in VARIANTS), *sorted(set(VARIANTS) - set(_ABLATION_ORDER)))
"""The ablation table's rows: every registered HERA variant, the paper's Table 4 order first, then this
implementation's extra switches; a variant added to ``routing/hera.py`` joins at the end by itself."""


@dataclass
class Evaluated:
    """One policy's replay: per-request outcomes, what the replay approximated, the metrics."""

    name: str
    outcomes: list[RequestOutcome]
    stats: ReplayStats
    metrics: PolicyMetrics
    error: str = ""


@dataclass
class Comparison:
    rows: list[Evaluated] = field(default_factory=list)

    def get(self, name: str) -> Evaluated | None:
        return next((row for row in self.rows if row.name == name), None)

    def to_json(self) -> list[dict[str, Any]]:
        return [{**row.metrics.to_json(), "error": row.error or None} for row in self.rows]


def evaluate(
    replayer: Replayer,
    names: Sequence[str],
    routing: RoutingSettings,
    all_llm_cost: Mapping[str, float],
    *,
    keys: Sequence[str] | None = None,
    resamples: int = 1000,
) -> Comparison:
    """Replay every named policy with ``routing`` on ``replayer``'s profile (or its ``keys``)."""
    comparison = Comparison()
    for name in names:
        policy = create_policy(name, routing)
        try:
            outcomes, stats = replayer.run(policy, keys)
            error = ""
        except Exception as exc:  # a baseline without its trained file: say so in its row
            outcomes, stats, error = [], ReplayStats(), f"{type(exc).__name__}: {exc}"
        unavailable = next((o.note for o in outcomes if o.status == "unavailable"), "")
        metrics = summarise(name, outcomes, all_llm_cost, resamples=resamples, extra=stats.to_json())
        comparison.rows.append(Evaluated(name, outcomes, stats, metrics, error or unavailable))
    return comparison


# -- rendering -----------------------------------------------------------------------------------


def markdown_table(rows: Sequence[PolicyMetrics], *, families: Sequence[str] = (), latency: bool = True) -> str:
    """A markdown table of ``rows``: accuracy, SLM usage and cost with 95 % bootstrap intervals."""
    headers = ["policy", "n", "not evaluated", "accuracy % [95% CI]"]
    headers += [f"acc. {family} %" for family in families]
    headers += ["SLM usage % [95% CI]", "cost vs All-LLM [95% CI]", "completed %", "subtasks/req"]
    # Live runs also carry the full cost model (tokens, GPU time, energy, transfer) per request.
    full = any(not math.isnan(m.full_cost_usd) for m in rows)
    if full:
        headers += ["full cost $/req"]
    if latency:
        headers += ["latency s", "deciding %"]
    lines = []
    for m in rows:
        cells = [f"`{m.policy}`", str(m.counted), str(m.off_tree + m.unavailable), pct_ci(m.accuracy, m.accuracy_ci)]
        cells += [pct(m.accuracy_by_family.get(family, math.nan)) for family in families]
        cells += [
            pct_ci(m.slm_usage, m.slm_usage_ci),
            ratio_ci(m.cost, m.cost_ci),
            pct(m.completion_rate),
            "–" if math.isnan(m.subtasks_per_request) else f"{m.subtasks_per_request:.2f}",
        ]
        if full:
            cells.append("–" if math.isnan(m.full_cost_usd) else f"{m.full_cost_usd:.6f}")
        if latency:
            cells += [
                "–" if math.isnan(m.latency_s) else f"{m.latency_s:.2f}",
                "–" if math.isnan(m.decision_share) else f"{100 * m.decision_share:.2f}",
            ]
        lines.append(cells)
    return table(headers, lines)


def branch_table(rows: Sequence[PolicyMetrics]) -> str:
    """Steps per HERA branch (a span counts each step it covers)."""
    branches = ["urc", "sse", "sle", "cd", "sd", "fallback"]
    lines = []
    for m in rows:
        total = sum(m.branches.get(b, 0) for b in branches)
        if not total:
            continue
        cells = [f"{m.branches.get(b, 0)} ({100 * m.branches.get(b, 0) / total:.0f}%)" for b in branches]
        lines.append([f"`{m.policy}`", *cells])
    return table(["policy", *branches], lines)
