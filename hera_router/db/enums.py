"""Status and kind enums shared by the database and the code that reads it.

Plain :class:`enum.StrEnum` with no SQLAlchemy import, so pure layers (``routing/``) can use
them without pulling in the database. Columns store the *value* (``"queued"``), never the member
name, so renaming a member is a code change and renaming a value is a migration.
"""

from __future__ import annotations

import enum


class RequestStatus(enum.StrEnum):
    """Lifecycle of one agent request."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SubtaskStatus(enum.StrEnum):
    """Lifecycle of one subtask (an agent step assigned to an executor)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Executor(enum.StrEnum):
    """Which model runs a step: the edge small model or the cloud large model."""

    SLM = "slm"
    LLM = "llm"


class ModelRole(enum.StrEnum):
    """Where a model call went; the deployment-side twin of :class:`Executor`."""

    EDGE = "edge"
    CLOUD = "cloud"


class CallStatus(enum.StrEnum):
    """Outcome of one model call (after the client's own retries)."""

    OK = "ok"
    ERROR = "error"
    DISCARDED = "discarded"
    """Made and paid for, but another attempt of the same step finished first and its result was
    kept (the step had been given back after its worker looked dead)."""
    STARTED = "started"
    """On record before the call was made; the outcome follows. A row left ``started`` by a worker
    that died is a call that may have been billed: its outcome is unknown (see ``unknown_calls``)."""


class EstimatorStatus(enum.StrEnum):
    """A trained estimator version: waiting for promotion, serving, or replaced."""

    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class RunStatus(enum.StrEnum):
    """Lifecycle of an offline job (training run, profiling run)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL_REQUEST_STATUSES: frozenset[RequestStatus] = frozenset(
    {RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELLED}
)
"""Statuses a request never leaves; guarded transitions never list them as a source."""

ACTIVE_REQUEST_STATUSES: frozenset[RequestStatus] = frozenset({RequestStatus.QUEUED, RequestStatus.RUNNING})
"""Statuses of a request that still has work ahead (what the reconciler watches)."""


class OpenAIBatchStatus(enum.StrEnum):
    """Life cycle of an OpenAI-compatible batch (``/v1/batches``), with OpenAI's names."""

    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


OPEN_OPENAI_BATCH_STATUSES: frozenset[OpenAIBatchStatus] = frozenset(
    {
        OpenAIBatchStatus.VALIDATING,
        OpenAIBatchStatus.IN_PROGRESS,
        OpenAIBatchStatus.FINALIZING,
        OpenAIBatchStatus.CANCELLING,
    }
)
"""Statuses of a batch whose output files are not written yet."""
