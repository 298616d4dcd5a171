"""What the console's JSON endpoints (``/v1/console``) answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from hera_router.api.schemas import BatchStatus, ModelCallView, RequestDetail
from hera_router.db.enums import Executor, RequestStatus, SubtaskStatus


class Viewer(BaseModel):
    """Who is signed in: the operator (every tenant) or one tenant's key (its own objects)."""

    role: Literal["admin", "tenant"]
    tenant: str | None = None
    tenant_id: uuid.UUID | None = None


class RequestRow(BaseModel):
    id: uuid.UUID
    tenant: str
    batch_id: uuid.UUID | None
    custom_id: str | None
    status: RequestStatus
    policy: str
    input: str = Field(description="The request's text, cut to 200 characters.")
    slm_steps: int
    llm_steps: int
    cost_usd: float
    created_at: datetime


class ScoreCheck(BaseModel):
    """One score a routing stage compared with its threshold, and whether it passed."""

    name: str
    score: float
    threshold: float | None
    passed: bool | None = Field(description="Null for a score no threshold applies to.")
    rule: str = Field(description="How the score is compared: `>` or `>=`, empty without a threshold.")
    source: Literal["decision", "setting", ""] = Field(
        description="`decision`: the threshold is on the decision record; `setting`: today's setting."
    )


class Escalation(BaseModel):
    """A verify stage's judgement of the step's SLM (or a ladder rung's) result."""

    stage: str
    score: float | None
    threshold: float | None
    accepted: bool


class ConsoleStep(BaseModel):
    """One step (or a part of a decomposed step) with its routing and its model calls."""

    id: uuid.UUID
    seq: int
    part: int
    depth: int = Field(description="0 for a step, 1 for a part it was decomposed into.")
    text: str
    output: str | None
    error: str | None
    executor: Executor
    tier: str | None
    branch: str
    status: SubtaskStatus
    policy: str | None = None
    kappa: float | None = None
    span: int | None = None
    checks: list[ScoreCheck] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    fallback_reason: str | None = None
    estimator_versions: dict[str, object] = Field(default_factory=dict)
    decide_ms: float | None = None
    calls: list[ModelCallView] = Field(default_factory=list)
    latency_ms: float = Field(description="The step's model calls' latency, summed.")
    cost_usd: float
    tokens_in: int
    tokens_out: int


class ConsoleRequest(BaseModel):
    tenant: str
    detail: RequestDetail
    steps: list[ConsoleStep]


class FailedLine(BaseModel):
    request_id: uuid.UUID
    custom_id: str | None
    error: str | None


class BatchRow(BaseModel):
    id: uuid.UUID
    tenant: str
    name: str | None
    policy: str
    accepted: int
    rejected: int
    cancelled: bool
    created_at: datetime


class ConsoleBatch(BaseModel):
    tenant: str
    status: BatchStatus
    failed: list[FailedLine]


class DayPoint(BaseModel):
    day: str
    requests: int
    slm_steps: int
    llm_steps: int
    slm_share: float | None = Field(description="SLM steps / all steps; null on a day without steps.")
    cost_usd: float
    all_llm_usd: float = Field(
        description="Estimate of what All-LLM would have paid: each step's tokens (its cloud call's if it made one, "
        "else its edge call's) at the cloud model's token price."
    )


class BranchCount(BaseModel):
    branch: str
    decisions: int
    steps: int


class TenantSpendRow(BaseModel):
    tenant: str
    requests: int
    cost_usd: float


class EstimatorRow(BaseModel):
    name: str
    version: int
    status: str
    created_at: datetime
    promoted_at: datetime | None
    calibration: dict[str, float] = Field(description="The version's numeric metrics (AUC, ECE, ... as trained).")


class Overview(BaseModel):
    since: datetime
    days: list[DayPoint]
    slm_steps: int
    llm_steps: int
    slm_share: float | None
    cost_usd: float
    all_llm_usd: float
    cloud_model: str
    branches: list[BranchCount]
    tenants: list[TenantSpendRow]
    estimators: list[EstimatorRow]
