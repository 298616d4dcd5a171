"""HERA decision latency per branch, and decision time as a share of end-to-end request time.

STUB ESTIMATORS WITH MODELLED COST. The policy (``routing/hera.py``) runs for real; each estimator
call sleeps for a per-call cost instead of running a model, so what is measured is the policy's own
work plus the modelled estimator time, branch by branch. Costs (ms per call, CPU, 2 cores) are
assumptions stated in ``VARIANTS`` until the real estimators can be timed here:

* ``embedding`` SP: MiniLM-sized URC/DP forward ≈ 8 ms; an SP step in embedding space ≈ 0.5 ms
  (an MLP on a 384-float vector) plus one embedding of the current subtask ≈ 8 ms per roll-out;
  SD ``prompted`` = one call of the simulated edge model, 0.3 s.
* ``generative`` SP: each predicted subtask is generated (SmolLM2-135M, ≈ 25 tokens ≈ 150 ms) and
  embedded (8 ms).

End-to-end share: a decision's time over (decision + the model time of the steps it covers) with
edge 0.3 s/step and cloud 1.5 s/step (SD: one edge step per part), and for a request mix.

    .venv/bin/python benchmarks/bench_routing.py [--n 200] [--n-generative 20]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hera_router.config import RoutingSettings
from hera_router.db.enums import Executor
from hera_router.routing.base import RoutingContext
from hera_router.routing.estimators import ChainState, Estimators, Vector
from hera_router.routing.hera import HeraPolicy

EDGE_S, CLOUD_S = 0.3, 1.5
LOW, HIGH = 0.1, 0.95
BASE: Vector = np.array([1.0, 0.0], dtype=np.float32)


def with_similarity(similarity: float) -> Vector:
    """A unit vector whose cosine with ``BASE`` is ``similarity`` (as in tests/unit/routing/stubs.py)."""
    return np.array([similarity, math.sqrt(max(0.0, 1.0 - similarity**2))], dtype=np.float32)


@dataclass(frozen=True)
class Cost:
    """Modelled milliseconds per estimator call."""

    urc: float
    dp: float
    embed: float
    """One SBERT embedding (of the current subtask, once per roll-out)."""
    sp_step: float
    """One predicted step of a roll-out."""
    sd: float


VARIANTS = {
    "embedding": Cost(urc=8.0, dp=8.0, embed=8.0, sp_step=0.5, sd=300.0),
    "generative": Cost(urc=8.0, dp=8.0, embed=8.0, sp_step=158.0, sd=300.0),
}

# branch -> (URC score, SLM similarity script, DP's d, SD parts' similarity, parts)
SCENARIOS: dict[str, tuple[float, list[float], int | None, float, int]] = {
    "urc": (0.9, [], None, HIGH, 0),
    "sse": (0.1, [HIGH], None, HIGH, 0),
    "sle": (0.1, [LOW, HIGH], 1, HIGH, 0),
    "cd": (0.1, [LOW, LOW, LOW, HIGH], None, HIGH, 0),
    "sd": (0.1, [LOW], None, HIGH, 3),
    "fallback": (0.1, [LOW], 1, LOW, 3),
}

# A request mix for the overall share: the paper's Table 4 puts ≈84 % of steps on the SLM; the
# split over branches is an assumption (no per-branch counts are published).
MIX = {"sse": 0.45, "sle": 0.08, "cd": 0.07, "sd": 0.08, "fallback": 0.32}


def _sleep_ms(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1e3)


class CostlyScorer:
    version = "bench"

    def __init__(self, value: float, cost: Cost) -> None:
        self.value, self.cost = value, cost

    def score(self, request: str) -> float:
        _sleep_ms(self.cost.urc)
        return self.value


class CostlyPredictor:
    version = "bench"

    def __init__(self, script: Sequence[float] | None, parts_sim: float, cost: Cost) -> None:
        self.script, self.parts_sim, self.cost = script, parts_sim, cost

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        _sleep_ms(self.cost.embed + self.cost.sp_step * steps)
        if self.script is None:
            return [BASE] * steps
        sims = [self.parts_sim] if state.current.startswith("part") else list(self.script)
        return [with_similarity(s) for s in [*sims, *[0.0] * steps][:steps]]


class CostlyDistance:
    version = "bench"

    def __init__(self, d: int | None, cost: Cost) -> None:
        self.d, self.cost = d, cost

    def predict(self, subtask: str, seq: int) -> int | None:
        _sleep_ms(self.cost.dp)
        return self.d


class CostlyDecomposer:
    version = "bench"

    def __init__(self, parts: int, cost: Cost) -> None:
        self.parts, self.cost = parts, cost

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        _sleep_ms(self.cost.sd)
        return [f"part {k}" for k in range(self.parts)]


def bundle(branch: str, cost: Cost) -> Estimators:
    urc, script, d, parts_sim, parts = SCENARIOS[branch]
    return Estimators(
        urc=CostlyScorer(urc, cost),
        sp_slm=CostlyPredictor(script, parts_sim, cost),
        sp_llm=CostlyPredictor(None, parts_sim, cost),
        dp=CostlyDistance(d, cost),
        sd=CostlyDecomposer(parts, cost),
    )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def executed_seconds(branch: str, executor: Executor, span: int, parts: int) -> float:
    if parts:
        return EDGE_S * parts
    return (EDGE_S if executor is Executor.SLM else CLOUD_S) * span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="decisions per branch, embedding variant")
    parser.add_argument("--n-generative", type=int, default=20, help="decisions per branch, generative variant")
    args = parser.parse_args()
    policy = HeraPolicy(RoutingSettings(cd_horizon=5))
    context = RoutingContext(request_id="b", request="a request", current="a subtask", seq=3, max_steps=15)
    sizes = f"n={args.n} embedding, {args.n_generative} generative"
    print(f"# {platform.python_version()} on {platform.machine()}; {sizes}")
    print("| variant | branch | p50 ms | p99 ms | span | share of covered step time |")
    print("|---|---|---|---|---|---|")
    for variant, cost in VARIANTS.items():
        p50s: dict[str, float] = {}
        covered: dict[str, float] = {}
        for branch in SCENARIOS:
            estimators = bundle(branch, cost)
            times = []
            for _ in range(args.n if variant == "embedding" else args.n_generative):
                started = time.perf_counter()
                decision = policy.decide(context, estimators)
                times.append((time.perf_counter() - started) * 1e3)
            assert decision.branch == branch, (branch, decision.branch)
            p50s[branch] = statistics.median(times)
            steps_s = executed_seconds(branch, decision.executor, decision.span, len(decision.parts))
            covered[branch] = steps_s
            share = p50s[branch] / 1e3 / (p50s[branch] / 1e3 + steps_s)
            print(
                f"| {variant} | {branch} | {p50s[branch]:.2f} | {percentile(times, 0.99):.2f} | "
                f"{decision.span} | {share:.1%} |"
            )
        # Mix: decisions per request-step weighted by the assumed branch frequencies.
        decision_s = sum(w * p50s[b] / 1e3 for b, w in MIX.items())
        model_s = sum(w * covered[b] for b, w in MIX.items())
        print(f"| {variant} | **mix** | {decision_s * 1e3:.1f} | | | {decision_s / (decision_s + model_s):.1%} |")


if __name__ == "__main__":
    main()
