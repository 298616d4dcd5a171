"""Calibration: the thresholds that meet a target SLM share or cost ratio on the user's own traffic.

RouteLLM calibrates its threshold on a fixed public set; here the search runs on a *validation*
part of the user's profiled requests and the result is reported on a *held-out* part, so the
accuracy it promises is measured on requests the search never saw.

Search: every pair (τ_req, κ base) of a grid is replayed on the validation requests (the
estimators are cached, so each pair costs only the decisions). Among the pairs whose validation
value is within ``tolerance`` of the target, the most accurate one wins (ties: closer to the
target, then the higher thresholds, which route more conservatively); if none is within
tolerance, the closest pair wins and the result says the target was missed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hera_router.config import RoutingSettings
from hera_router.evaluation.metrics import PolicyMetrics, summarise
from hera_router.evaluation.sweeps import hera_with
from hera_router.training.replay import Replayer

Target = Literal["slm_share", "cost"]

TAU_GRID: tuple[float, ...] = tuple(round(v, 2) for v in np.arange(0.40, 1.0001, 0.03))
KAPPA_GRID: tuple[float, ...] = tuple(round(v, 2) for v in np.arange(0.40, 0.9001, 0.02))


def split_keys(keys: Sequence[str], validation_fraction: float = 0.5, seed: int = 0) -> tuple[list[str], list[str]]:
    """(validation, held-out): a deterministic split by a hash of each key."""

    def draw(key: str) -> float:
        return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big") / 2**64

    validation = [k for k in keys if draw(k) < validation_fraction]
    return validation, [k for k in keys if draw(k) >= validation_fraction]


@dataclass(frozen=True)
class Calibration:
    target: Target
    goal: float
    tolerance: float
    tau_req: float
    kappa_base: float
    met: bool
    validation: PolicyMetrics
    held_out: PolicyMetrics
    candidates: int

    def achieved(self, metrics: PolicyMetrics) -> float:
        return metrics.slm_usage if self.target == "slm_share" else metrics.cost

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "goal": self.goal,
            "tolerance": self.tolerance,
            "tau_req": self.tau_req,
            "kappa_base": self.kappa_base,
            "met_on_validation": self.met,
            "candidates": self.candidates,
            "validation": self.validation.to_json(),
            "held_out": self.held_out.to_json(),
        }


def calibrate(
    replayer: Replayer,
    routing: RoutingSettings,
    all_llm_cost: Mapping[str, float],
    *,
    target: Target,
    goal: float,
    validation: Sequence[str],
    held_out: Sequence[str],
    tolerance: float = 0.03,
    tau_grid: Sequence[float] = TAU_GRID,
    kappa_grid: Sequence[float] = KAPPA_GRID,
    resamples: int = 200,
) -> Calibration:
    """Thresholds meeting ``goal`` for ``target`` on ``validation``; accuracy on ``held_out``."""
    if not validation or not held_out:
        raise ValueError("calibration needs both validation and held-out requests")
    scored: list[tuple[tuple[float, float, float, float], float, float, PolicyMetrics]] = []
    for tau in tau_grid:
        for base in kappa_grid:
            outcomes, stats = replayer.run(hera_with(routing, tau_req=tau, kappa_base=base), validation)
            metrics = summarise("hera", outcomes, all_llm_cost, resamples=0, extra=stats.to_json())
            value = metrics.slm_usage if target == "slm_share" else metrics.cost
            if math.isnan(value) or math.isnan(metrics.accuracy):
                continue
            miss = abs(value - goal)
            within = miss <= tolerance + 1e-12
            # Sort key: within tolerance first, then accuracy (only inside tolerance), closeness,
            # then conservative (higher) thresholds.
            key = (0.0 if within else 1.0, -metrics.accuracy if within else miss, miss, -(tau + base))
            scored.append((key, tau, base, metrics))
    if not scored:
        raise ValueError("no threshold pair produced a measurable validation result")
    key, tau, base, _ = min(scored, key=lambda entry: entry[0])
    chosen = hera_with(routing, tau_req=tau, kappa_base=base)
    outcomes, stats = replayer.run(chosen, validation)
    on_validation = summarise(
        f"hera τ_req={tau:.2f} κ_base={base:.2f}", outcomes, all_llm_cost, resamples=resamples, extra=stats.to_json()
    )
    outcomes, stats = replayer.run(chosen, held_out)
    on_held_out = summarise(
        f"hera τ_req={tau:.2f} κ_base={base:.2f}", outcomes, all_llm_cost, resamples=resamples, extra=stats.to_json()
    )
    return Calibration(target, goal, tolerance, tau, base, key[0] == 0.0, on_validation, on_held_out, len(scored))
