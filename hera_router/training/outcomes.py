"""What a request ended with under one policy, step by step: the record a replay of a profile and
a live run through the pipeline both produce, so every metric is computed by the same code."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hera_router.db.enums import Executor

Status = Literal["completed", "failed", "off_tree", "unavailable"]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One executed step: who ran it, why, and what it cost."""

    seq: int
    executor: Executor
    branch: str
    tokens_in: int = 0
    tokens_out: int = 0
    remote_cost_usd: float = 0.0
    """USD charged by the cloud for this step (0 for an SLM step)."""
    model_s: float = 0.0
    """Model latency of the step (simulated or measured)."""
    decision_s: float = 0.0
    """Time spent deciding this step (0 inside a span: no routing)."""
    routed: bool = True
    """False for a step inside a span (SLE/CD/URC) that the policy was not asked about."""
    escalated: bool = False
    """The SLM ran the step first and the verify stage re-ran it on the LLM (``executor`` is the
    LLM; ``model_s`` holds both calls)."""


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What one request ended with under one policy."""

    key: str
    family: str
    status: Status
    steps: tuple[StepRecord, ...] = ()
    answer: str | None = None
    score: float = 0.0
    note: str = ""
    """Why the request is off-tree, failed or unavailable."""
    full_cost_usd: float = math.nan
    """Every model call of the request on the full cost model (tokens, GPU time, energy, transfer;
    discarded and escalated calls too): live runs only, NaN in replay."""

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def slm_share(self) -> float | None:
        """Share of the executed steps that ran on the SLM; None when no step ran."""
        if not self.steps:
            return None
        return sum(step.executor is Executor.SLM for step in self.steps) / len(self.steps)

    @property
    def remote_cost_usd(self) -> float:
        return sum(step.remote_cost_usd for step in self.steps)

    @property
    def model_s(self) -> float:
        return sum(step.model_s for step in self.steps)

    @property
    def decision_s(self) -> float:
        return sum(step.decision_s for step in self.steps)

    @property
    def latency_s(self) -> float:
        return self.model_s + self.decision_s

    @property
    def counted(self) -> bool:
        """Whether the request enters the metrics (everything except off-tree and unavailable)."""
        return self.status in ("completed", "failed")


def counted(outcomes: Sequence[RequestOutcome]) -> list[RequestOutcome]:
    return [o for o in outcomes if o.counted]


def slm_usage(outcomes: Sequence[RequestOutcome]) -> float:
    """The paper's SLM usage: each request's SLM share of steps, averaged over requests."""
    shares = [share for o in counted(outcomes) if (share := o.slm_share) is not None]
    return statistics.fmean(shares) if shares else math.nan
