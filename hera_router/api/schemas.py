"""What the producer API accepts and returns (pydantic v2; no FastAPI import).

:class:`AgentRequestItem` is the one shape of a submitted request, whether it arrives alone, in a
JSON list or as a JSONL line; the submission service and the CLI validate against it too. Unknown
fields are errors everywhere (``extra="forbid"``): a misspelt ``prioirty`` must not be silently
dropped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from hera_router.db.enums import CallStatus, Executor, ModelRole, RequestStatus, SubtaskStatus
from hera_router.routing.registry import policy_names

CUSTOM_ID_MAX_CHARS = 256
"""Width of ``requests.custom_id``."""
POLICY_MAX_CHARS = 64
"""Width of ``requests.policy``."""
INT32_MAX = 2**31 - 1
"""``priority`` is an INTEGER column on both databases."""


class AgentRequestItem(BaseModel):
    """One agent request as a client submits it."""

    model_config = ConfigDict(extra="forbid")

    input: StrictStr = Field(min_length=1, description="The task for the agent (the root request ST_0).")
    custom_id: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=CUSTOM_ID_MAX_CHARS,
        description="Your key for this request; unique within a batch, echoed in the results.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form JSON kept with the request.")
    policy: StrictStr | None = Field(
        default=None,
        max_length=POLICY_MAX_CHARS,
        description="Routing policy (e.g. all-llm, all-slm, random); default: the batch's, else the server's.",
        json_schema_extra={"enum": [*policy_names(), None]},
    )
    # Strict: "5" or true is a client bug worth reporting, not a value to coerce.
    priority: StrictInt = Field(default=0, ge=-INT32_MAX, le=INT32_MAX)
    gold_answer: StrictStr | None = Field(
        default=None, description="The expected final answer, used for accuracy in reports."
    )
    cost_cap_usd: float | None = Field(
        default=None, gt=0, description="Spend cap of this request: near it, steps stay on the edge."
    )
    latency_budget_s: float | None = Field(
        default=None, gt=0, description="Wall-clock budget from submission: when tight, steps skip SLM speculation."
    )


# -- responses --------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: one sentence, plus per-field details for validation errors."""

    error: str
    details: list[FieldError] | None = None


class RejectedLine(BaseModel):
    """A batch line (JSONL) or item (JSON list) that did not become a request, and why."""

    line: Annotated[int, Field(description="1-based line of the file, or position in the JSON list.")]
    error: str
    message: Annotated[str, Field(description='The error as a sentence, e.g. "line 17: `input` is required".')]


class BatchRejectedBody(BaseModel):
    """422 of a batch submission: every line's error in ``rejected`` when no line was acceptable,
    or per-field ``details`` when a parameter (``policy``, ``name``) was not valid."""

    error: str
    rejected: list[RejectedLine] | None = None
    details: list[FieldError] | None = None


class RequestAccepted(BaseModel):
    id: uuid.UUID
    status: RequestStatus
    policy: str
    custom_id: str | None
    created_at: datetime


class BatchAccepted(BaseModel):
    id: uuid.UUID
    name: str | None
    policy: str
    accepted: int
    rejected: list[RejectedLine]
    created_at: datetime


class SubtaskNode(BaseModel):
    """A step of the request; ``children`` are the parts it was decomposed into (SD)."""

    id: uuid.UUID
    seq: int
    part: int
    parent_id: uuid.UUID | None
    executor: Executor
    tier: str | None = None
    """The model tier that runs (or ran) the step (``HERA_MODELS``); null without tiers."""
    branch: str
    status: SubtaskStatus
    text: str
    output: str | None
    next_subtask: str | None
    error: str | None
    attempts: int
    problems: list[str]
    children: list[SubtaskNode] = Field(default_factory=list)


class NodeStepView(BaseModel):
    """One step of a plan node's request: what ran where and when."""

    seq: int
    part: int
    executor: Executor
    branch: str
    status: SubtaskStatus
    started_at: datetime
    finished_at: datetime


class PlanNodeView(BaseModel):
    """A node of the request's plan with dependencies: what it needed, where its steps
    ran and when; ``request_id`` is the node's own request (``GET /requests/{id}`` for all of it)."""

    key: str
    text: str
    needs: list[str]
    status: str
    answer: str | None
    level: int
    to_final: int
    descendants: int
    depth_steps: int
    request_id: uuid.UUID | None
    slm_steps: int = 0
    llm_steps: int = 0
    cost_usd: float = 0.0
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[NodeStepView] = Field(default_factory=list)


class DecisionView(BaseModel):
    seq: int
    policy: str
    executor: Executor
    branch: str
    span: int
    scores: dict[str, Any]
    kappa: float | None
    estimator_versions: dict[str, Any]
    elapsed_ms: float
    fallback_reason: str | None
    created_at: datetime


class ModelCallView(BaseModel):
    subtask_id: uuid.UUID | None
    backend: str
    model: str
    role: ModelRole
    tier: str | None = None
    """The model tier the call went to (``HERA_MODELS``); null without tiers."""
    status: CallStatus
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cost_usd: float
    attempts: int
    error: str | None
    estimated_cost_usd: float = 0.0
    """For a call still ``started``: what it costs at the step's token limit."""
    tokens_cost_usd: float = 0.0
    gpu_cost_usd: float = 0.0
    energy_cost_usd: float = 0.0
    transfer_cost_usd: float = 0.0
    bytes_sent: int = 0
    """``cost_usd`` is the sum of the four components (tokens, GPU time, energy, transfer)."""


class RoleUsage(BaseModel):
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


class ModelCallSummary(BaseModel):
    """Totals of the request's model calls, overall and per role (edge, cloud)."""

    calls: int
    errors: int
    unknown: int = 0
    """Calls put on record (``started``) whose outcome never came: the worker died during the call,
    which the provider may have billed. Not in ``cost_usd``; estimated in ``unknown_cost_usd``."""
    unknown_cost_usd: float = 0.0
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    by_role: dict[ModelRole, RoleUsage]
    items: list[ModelCallView]
    components: dict[str, float] = Field(
        default_factory=dict,
        description="The request's cost by component (tokens, gpu, energy, transfer); they add up to `cost_usd`.",
    )
    cloud_tokens_usd: float = Field(default=0.0, description="The paper's cost: cloud token dollars only.")


class RequestDetail(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID | None
    custom_id: str | None
    status: RequestStatus
    policy: str
    priority: int
    metadata: dict[str, Any]
    input: str
    final_answer: str | None
    error: str | None
    gold_answer: str | None
    cost_usd: float
    slm_steps: int
    llm_steps: int
    current_seq: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    subtasks: list[SubtaskNode]
    decisions: list[DecisionView]
    model_calls: ModelCallSummary
    graph: list[PlanNodeView] = Field(default_factory=list)
    """The plan's nodes when a step fanned out (empty for a chain)."""


class BatchStatus(BaseModel):
    id: uuid.UUID
    name: str | None
    policy: str
    metadata: dict[str, Any]
    created_at: datetime
    accepted: int
    rejected: list[RejectedLine]
    total: int
    done: int
    counts: dict[RequestStatus, int] = Field(description="Requests per status, every status listed.")
    cost_usd: float
    slm_steps: int
    llm_steps: int
    cancelled: bool
    cancelled_at: datetime | None


class RequestCancelled(BaseModel):
    id: uuid.UUID
    status: RequestStatus


class BatchCancelled(BaseModel):
    id: uuid.UUID
    cancelled_at: datetime | None
    cancelled_requests: int = Field(description="Requests this call moved to cancelled (0 when repeated).")


class Health(BaseModel):
    status: str
    """``ok``, or ``degraded`` when a queue every request passes through has no consumer."""
    database: str
    broker: str
    queues: dict[str, list[str]] | None = None
    """Each queue → the worker nodes consuming it now (empty: nobody); null when the workers could
    not be asked."""
    warning: str | None = None
    """What is degraded and what to do, in one sentence."""
