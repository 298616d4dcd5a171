"""The tables. Column types come from :mod:`hera_router.db.base`.

Idempotency lives in the unique keys: a redelivered task that tries to write the same subtask
(request, seq, part), decision (request, seq), model call (idempotency key), outbox message
(task id) or training run (model, scheduled time) hits the constraint instead of doubling work or
cost. Child rows cascade at the database level (``ON DELETE CASCADE``), so retention jobs delete
requests or runs with one statement.

Shadow labels (``shadow_runs``) arrived in revision 0005; the OpenAI-compatible files and
batches (``openai_files``, ``openai_batches``) in 0006.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hera_router.db.base import Base, CreatedAt, JSONType, Timestamps, UUIDPrimaryKey, value_enum
from hera_router.db.enums import (
    CallStatus,
    EstimatorStatus,
    Executor,
    ModelRole,
    OpenAIBatchStatus,
    RequestStatus,
    RunStatus,
    SubtaskStatus,
)

NAME_LENGTH = 128
BRANCH_LENGTH = 32
"""Routing branch labels (``URC``, ``SSE``, ``SLE``, ``CD``, ``SD``, ``LLM``, ``fallback`` ...)."""
TIER_NAME_LENGTH = 64
"""A model tier's name (``ModelTier.name``)."""
WORKER_NAME_LENGTH = 200


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    """A customer of the producer API; owns API keys and requests."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    daily_budget_usd: Mapped[float | None]
    """Spend cap per UTC day (all model-call costs of the tenant's requests); None: no cap."""
    monthly_budget_usd: Mapped[float | None]
    """Spend cap per UTC calendar month; None: no cap."""
    budget_action: Mapped[str | None] = mapped_column(String(16))
    """What a running request does when a budget is crossed: ``stop`` or ``cheapest`` (finish on
    the edge); None: ``HERA_BUDGETS__DEFAULT_ACTION``."""

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant", passive_deletes=True)


class ApiKey(UUIDPrimaryKey, CreatedAt, Base):
    """A tenant's API key. Only the SHA-256 of the secret is stored, never the secret.

    ``prefix`` is the first characters of the secret, stored in clear so a presented key is found
    by an indexed lookup and then checked against ``key_hash`` in constant time.
    """

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    """When the key last authenticated a call (refreshed at most once a minute); None: never."""
    requests_per_minute: Mapped[int | None]
    """This key's request rate limit; None: ``HERA_API__REQUESTS_PER_MINUTE``, 0: unlimited."""
    tokens_per_minute: Mapped[int | None]
    """This key's token rate limit; None: ``HERA_API__TOKENS_PER_MINUTE``, 0: unlimited."""

    tenant: Mapped[Tenant] = relationship(back_populates="api_keys")


class Batch(UUIDPrimaryKey, Timestamps, Base):
    """A set of requests submitted together (a JSON list or a JSONL upload).

    Progress and cost are read from the requests; the batch itself keeps what only it knows: how
    many lines were accepted, which were rejected and why, and whether it was cancelled.
    """

    __tablename__ = "batches"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    policy: Mapped[str] = mapped_column(String(64))
    accepted: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """``[{"line": 17, "error": "..."}]``: the input lines that did not become requests."""
    cancelled_at: Mapped[datetime | None]


class Request(UUIDPrimaryKey, Timestamps, Base):
    """One agent request: the root task ST_0, its progress and its totals.

    ``current_seq`` is the step the router plans next; advancing it is a guarded update, so a
    redelivered router message for an old step changes nothing. ``updated_at`` doubles as the
    progress clock the reconciler reads, ``heartbeat_at`` as the liveness clock of a running step.
    """

    __tablename__ = "requests"
    __table_args__ = (
        # custom_id is the caller's key inside a batch (OpenAI Batch format); NULLs never collide.
        UniqueConstraint("batch_id", "custom_id"),
        # the reconciler scans "queued/running and not updated since T"
        Index(None, "status", "updated_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), index=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    custom_id: Mapped[str | None] = mapped_column(String(256))
    input: Mapped[str] = mapped_column(Text)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    policy: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[RequestStatus] = mapped_column(
        value_enum(RequestStatus, "request_status"), default=RequestStatus.QUEUED
    )
    final_answer: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    current_seq: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    deadline: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    gold_answer: Mapped[str | None] = mapped_column(Text)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    cost_cap_usd: Mapped[float | None]
    """The request's own spend cap: near it, steps stay on the cheapest rung (beyond the paper)."""
    latency_budget_s: Mapped[float | None]
    """Wall-clock budget from submission: when tight, steps skip SLM speculation (beyond the paper)."""
    slm_steps: Mapped[int] = mapped_column(default=0)
    llm_steps: Mapped[int] = mapped_column(default=0)

    tenant: Mapped[Tenant] = relationship()
    subtasks: Mapped[list[Subtask]] = relationship(
        back_populates="request", order_by="(Subtask.seq, Subtask.part)", passive_deletes=True
    )
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="request", order_by="Decision.seq", passive_deletes=True
    )


class Subtask(UUIDPrimaryKey, Timestamps, Base):
    """One step of a request, assigned to an executor by a decision.

    ``part`` numbers the pieces when a step is decomposed; ``parent_id`` links a piece to the step
    it came from, so a request's subtasks form a tree.
    """

    __tablename__ = "subtasks"
    # The unique index leads with request_id, so it also serves "all subtasks of a request".
    __table_args__ = (UniqueConstraint("request_id", "seq", "part"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subtasks.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    part: Mapped[int] = mapped_column(default=0)
    executor: Mapped[Executor] = mapped_column(value_enum(Executor, "executor"))
    tier: Mapped[str | None] = mapped_column(String(TIER_NAME_LENGTH))
    """The named model tier (``HERA_MODELS``) that runs the step; None: the role's own backend."""
    branch: Mapped[str] = mapped_column(String(BRANCH_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    """The parsed result of the step."""
    speculative_output: Mapped[str | None] = mapped_column(Text)
    """The SLM's raw answer to a step that the verify stage rejected and re-ran on the LLM (its
    call and cost stay in ``model_calls``)."""
    raw_output: Mapped[str | None] = mapped_column(Text)
    """The model's answer as it came back, for audits and training data."""
    next_subtask: Mapped[str | None] = mapped_column(Text)
    """The subtask this step proposed next (the text of step seq + 1), if any."""
    problems: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """What the tolerant parser had to guess when reading ``raw_output``."""
    confidence: Mapped[float | None]
    """Mean token logprob of the answer, when the backend reports one (the minions signal)."""
    claimed_by: Mapped[str | None] = mapped_column(String(WORKER_NAME_LENGTH))
    """The worker process (``host:pid``) that claimed the running attempt; the reconciler gives the
    step back when that worker stops beating (``workers``)."""
    status: Mapped[SubtaskStatus] = mapped_column(
        value_enum(SubtaskStatus, "subtask_status"), default=SubtaskStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)

    request: Mapped[Request] = relationship(back_populates="subtasks")
    parent: Mapped[Subtask | None] = relationship(back_populates="children", remote_side="Subtask.id")
    children: Mapped[list[Subtask]] = relationship(back_populates="parent", passive_deletes=True)


class Decision(UUIDPrimaryKey, CreatedAt, Base):
    """What the policy decided at step ``seq`` and why: the record evaluation and training read.

    ``span`` is how many steps the decision covers (SLE/CD hand several steps to the SLM);
    ``estimator_versions`` maps estimator name to the version that produced ``scores``.
    """

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("request_id", "seq"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    seq: Mapped[int]
    policy: Mapped[str] = mapped_column(String(64))
    executor: Mapped[Executor] = mapped_column(value_enum(Executor, "executor"))
    branch: Mapped[str] = mapped_column(String(BRANCH_LENGTH))
    span: Mapped[int] = mapped_column(default=1)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kappa: Mapped[float | None]
    estimator_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    elapsed_ms: Mapped[float]
    fallback_reason: Mapped[str | None] = mapped_column(Text)

    request: Mapped[Request] = relationship(back_populates="decisions")


class Worker(Base):
    """A live worker process: its heartbeat says the steps it claimed are still being worked on."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(WORKER_NAME_LENGTH), primary_key=True)
    """``host:pid`` of the process that claims steps."""
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)


class ModelCall(UUIDPrimaryKey, CreatedAt, Base):
    """One call to a model backend, with tokens, latency and cost.

    ``idempotency_key`` is derived from the subtask and attempt by the caller; recording the same
    call twice (a redelivered execution task) returns the first row and charges once.
    """

    __tablename__ = "model_calls"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    subtask_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subtasks.id", ondelete="SET NULL"), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    role: Mapped[ModelRole] = mapped_column(value_enum(ModelRole, "model_role"))
    tier: Mapped[str | None] = mapped_column(String(TIER_NAME_LENGTH))
    """The model tier the call went to (``HERA_MODELS``); None without tiers."""
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    latency_ms: Mapped[float]
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    """The sum of the components below (``backends.pricing.CostBreakdown.total``)."""
    tokens_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    gpu_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    energy_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    transfer_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    bytes_sent: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    """Bytes the call sent off the edge (a cloud call's prompt); 0 on the edge."""
    estimated_cost_usd: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    """What the call would cost at the step's token limit, written before it is made."""
    status: Mapped[CallStatus] = mapped_column(value_enum(CallStatus, "call_status"))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    idempotency_key: Mapped[str] = mapped_column(String(256), unique=True)


class OutboxMessage(UUIDPrimaryKey, CreatedAt, Base):
    """A task to publish, written in the same transaction as the state that needs it.

    The relay publishes unpublished rows with ``task_id`` as the Celery task id and then sets
    ``published_at``; a crash in between publishes again, which consumers absorb by idempotency.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay only ever reads unpublished rows, oldest first; a partial index stays small.
        Index(
            "ix_outbox_unpublished",
            "created_at",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    task_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    task_id: Mapped[str] = mapped_column(String(256), unique=True)
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class EstimatorVersion(UUIDPrimaryKey, CreatedAt, Base):
    """A trained estimator artefact (e.g. ``dp`` version 3) and its evaluation metrics.

    At most one version per name is ``active``: a partial unique index enforces it on both
    databases, so a racing second promotion fails instead of leaving two active versions.
    """

    __tablename__ = "estimator_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index(
            "uq_estimator_versions_one_active_per_name",
            "name",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    status: Mapped[EstimatorStatus] = mapped_column(
        value_enum(EstimatorStatus, "estimator_status"), default=EstimatorStatus.CANDIDATE
    )
    path: Mapped[str] = mapped_column(String(1024))
    backbone: Mapped[str | None] = mapped_column(String(1024))
    """The base model the artefact was trained from (a local path or a packaged model's name)."""
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_window_start: Mapped[datetime | None]
    data_window_end: Mapped[datetime | None]
    promoted_at: Mapped[datetime | None]


class TrainingRun(UUIDPrimaryKey, Timestamps, Base):
    """One scheduled retraining of one estimator.

    Unique per (model, scheduled time): a second beat, or a redelivered nightly task, finds the
    row already there and does nothing.
    """

    __tablename__ = "training_runs"
    __table_args__ = (UniqueConstraint("model_name", "scheduled_for"),)

    model_name: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime]
    status: Mapped[RunStatus] = mapped_column(value_enum(RunStatus, "run_status"), default=RunStatus.QUEUED)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]


class ShadowRun(UUIDPrimaryKey, Timestamps, Base):
    """A finished live request re-run as a profiling tree on the training queue: shadow labels.

    One row per sampled request (the unique key makes a redelivered shadow task a no-op). The tree
    itself is stored as a profile run of source ``shadow`` (``profile_run_id``), so the labelling
    code reads it like any profiled tree; ``cost_usd`` is the shadow spend, never added to the
    request's own cost, and summed per day against the cap. ``reason`` says why a run was skipped
    (cap reached) or failed.
    """

    __tablename__ = "shadow_runs"
    # the nightly run reads "succeeded, finished after the active version's data window"
    __table_args__ = (Index(None, "status", "finished_at"),)

    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"), unique=True)
    profile_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("profile_runs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[RunStatus] = mapped_column(value_enum(RunStatus, "run_status"), default=RunStatus.RUNNING)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    nodes: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]


class ProfileRun(UUIDPrimaryKey, Timestamps, Base):
    """A profiling pass: requests run with both models to build the trees estimators learn from."""

    __tablename__ = "profile_runs"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    source: Mapped[str] = mapped_column(String(16))
    """Where the trees came from: ``sim`` (the simulated world) or ``real`` (live backends)."""
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[RunStatus] = mapped_column(value_enum(RunStatus, "run_status"), default=RunStatus.RUNNING)
    n_requests: Mapped[int] = mapped_column(default=0)

    nodes: Mapped[list[ProfileNode]] = relationship(back_populates="run", passive_deletes=True)


class ProfileNode(UUIDPrimaryKey, CreatedAt, Base):
    """One node of a profiling tree: a step produced by the SLM or the LLM under its parent.

    ``kind`` says what the row is: ``root`` (the request, ST_0; no producing model), ``step``
    (``text`` is the subtask ``producing_model`` wrote after running the parent, or its final
    answer when ``is_final``; ``output`` is the result it gave for the parent, with that call's
    tokens and cost) or ``decomposition`` (the SLM's split of the parent subtask, one numbered line
    per part, in ``text``). See ``training/profiling.py``.
    """

    __tablename__ = "profile_nodes"
    __table_args__ = (Index(None, "run_id", "request_key"),)

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profile_runs.id", ondelete="CASCADE"))
    request_key: Mapped[str] = mapped_column(String(256))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("profile_nodes.id", ondelete="CASCADE"), index=True)
    depth: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16), default="step", server_default="step")
    producing_model: Mapped[Executor | None] = mapped_column(value_enum(Executor, "producing_model"))
    text: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    is_final: Mapped[bool] = mapped_column(default=False)
    correct: Mapped[bool | None]
    confidence: Mapped[float | None]
    """Mean token logprob of the call that wrote this node (its ``output`` and ``text``)."""
    step_correct: Mapped[bool | None]
    """Ground truth of that call's own result, where the source knows it (the simulator)."""

    run: Mapped[ProfileRun] = relationship(back_populates="nodes")


class OpenAIFile(UUIDPrimaryKey, CreatedAt, Base):
    """A file of the OpenAI-compatible Files API: a batch input a client uploaded, or a batch's
    output or error file (docs/openai-api.md).

    The bytes live in the row (``bytea`` on Postgres) so every API replica sees a file the moment
    its upload commits, and a batch's requests and its input file commit together; no object
    store to run or keep consistent. The size limit (``HERA_OPENAI__MAX_FILE_BYTES``) keeps rows
    within what Postgres handles comfortably. Clients see the id as ``file-<hex>``.
    """

    __tablename__ = "openai_files"
    # listing: a tenant's files, newest first; the expiry sweep: files past expires_at
    __table_args__ = (Index(None, "tenant_id", "created_at"), Index(None, "expires_at"))

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column("bytes")
    """Answered as ``bytes`` (an attribute named so would shadow the type in this class)."""
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """Deferred: listing and retrieving never load the bytes."""
    expires_at: Mapped[datetime | None]


class OpenAIBatch(UUIDPrimaryKey, Timestamps, Base):
    """A batch of the OpenAI-compatible Batches API, with OpenAI's status life cycle.

    Its lines run as the requests of the native batch ``batch_id`` (one request per valid line,
    ``custom_id`` kept; lines that could not run are stored in that batch's ``rejected``). The
    output and error files are written once, when a read finds every request finished (see
    ``api/openai/batches.py``), and the counts and usage are frozen then. Clients see the id as
    ``batch_<hex>``. The file ids are plain columns, not foreign keys: a batch keeps naming its
    files after a client deletes them, as OpenAI's does.
    """

    __tablename__ = "openai_batches"
    __table_args__ = (Index(None, "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"), unique=True)
    input_file_id: Mapped[uuid.UUID]
    endpoint: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[OpenAIBatchStatus] = mapped_column(
        value_enum(OpenAIBatchStatus, "openai_batch_status"), default=OpenAIBatchStatus.VALIDATING
    )
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    model: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    """Why validation failed the whole batch: ``[{"code", "line", "message", "param"}]``."""
    output_file_id: Mapped[uuid.UUID | None]
    error_file_id: Mapped[uuid.UUID | None]
    output_expires_s: Mapped[int | None]
    request_total: Mapped[int] = mapped_column(default=0)
    request_completed: Mapped[int] = mapped_column(default=0)
    request_failed: Mapped[int] = mapped_column(default=0)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    in_progress_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class PlanNode(UUIDPrimaryKey, Timestamps, Base):
    """One node of a request's plan with dependencies (revision 0010, ``agent/plan.py``).

    A step that fans out writes one row per node; each node runs as a chain request of its own
    (``child_id``, a deterministic id), started once every node it ``needs`` has its answer. The
    status moves waiting → running → succeeded | failed by guarded updates only, which (with the
    fan-in's lock on the graph's request row) is what makes fan-out and fan-in happen once.
    """

    __tablename__ = "plan_nodes"
    __table_args__ = (UniqueConstraint("request_id", "key"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    """The request whose step planned this graph."""
    key: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(default=0)
    """The planning step."""
    text: Mapped[str] = mapped_column(Text)
    needs: Mapped[list[str]] = mapped_column(JSONType, default=list)
    level: Mapped[int] = mapped_column(default=0)
    to_final: Mapped[int] = mapped_column(default=0)
    descendants: Mapped[int] = mapped_column(default=0)
    depth_steps: Mapped[int] = mapped_column(default=0)
    """Model steps on the longest dependency path before the node (known when it starts)."""
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    child_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"), unique=True)
    answer: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
