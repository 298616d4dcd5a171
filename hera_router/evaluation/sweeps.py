"""Threshold sweeps (the HERA paper, §5.6, Fig. 12): τ_req and the subtask threshold base.

Each point replays ``hera`` with one threshold changed and everything else at its setting. The
estimators are cached by the replayer, so a sweep costs one estimator pass plus cheap decisions.

The paper sweeps "τ_sse" from 0.60 to 0.80 without saying how it maps onto κ = base + step ·
min(ID, cap); here it is the base (``kappa_base``), so κ keeps its position awareness and moves
as a whole (κ at the cap is base + 0.10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hera_router.config import RoutingSettings
from hera_router.evaluation.metrics import PolicyMetrics, summarise
from hera_router.routing.hera import HeraPolicy
from hera_router.training.replay import Replayer

TAU_REQ_GRID = (0.50, 0.58, 0.62, 0.66, 0.70, 0.74, 0.78)
KAPPA_BASE_GRID = (0.60, 0.66, 0.70, 0.74, 0.80)
SWEEPS: dict[str, tuple[float, ...]] = {"tau_req": TAU_REQ_GRID, "kappa_base": KAPPA_BASE_GRID}
"""Setting → the paper's grid for it."""


@dataclass(frozen=True)
class SweepPoint:
    parameter: str
    value: float
    metrics: PolicyMetrics

    def to_json(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "value": self.value, **self.metrics.to_json()}


def hera_with(routing: RoutingSettings, **overrides: float) -> HeraPolicy:
    return HeraPolicy(routing.model_copy(update=overrides), name="hera")


def sweep(
    replayer: Replayer,
    routing: RoutingSettings,
    parameter: str,
    values: Sequence[float],
    all_llm_cost: Mapping[str, float],
    *,
    keys: Sequence[str] | None = None,
    resamples: int = 200,
) -> list[SweepPoint]:
    """``hera`` replayed once per value of ``parameter`` (a :class:`RoutingSettings` field)."""
    if parameter not in RoutingSettings.model_fields:
        raise ValueError(f"unknown routing setting {parameter!r}")
    points = []
    for value in values:
        outcomes, stats = replayer.run(hera_with(routing, **{parameter: value}), keys)
        metrics = summarise(
            f"hera {parameter}={value:.2f}", outcomes, all_llm_cost, resamples=resamples, extra=stats.to_json()
        )
        points.append(SweepPoint(parameter, value, metrics))
    return points


def markdown(points: Sequence[SweepPoint]) -> str:
    from hera_router.evaluation.render import pct, pct_ci, ratio_ci, table

    headers = [points[0].parameter if points else "value", "accuracy % [95% CI]", "SLM usage %"]
    rows = []
    for p in points:
        m = p.metrics
        cost = ratio_ci(m.cost, m.cost_ci)
        rows.append([f"{p.value:.2f}", pct_ci(m.accuracy, m.accuracy_ci), pct(m.slm_usage), cost, str(m.off_tree)])
    return table([*headers, "cost vs All-LLM", "off-tree"], rows)
