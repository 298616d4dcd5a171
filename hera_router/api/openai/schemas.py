"""OpenAI's wire shapes for Files, Batches, Chat Completions and Models (pydantic v2).

Field names and literals follow the official ``openai`` SDK's types, so the client parses our
answers into its own models unchanged. Our additions are extension fields the SDK keeps as extras
(``hera`` on a chat completion and its chunks).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

FilePurpose = Literal["batch", "batch_output"]
BatchStatusName = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 512


# -- files ------------------------------------------------------------------------------------


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


# -- batches ----------------------------------------------------------------------------------


class OutputExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2_592_000)


Metadata = Annotated[
    dict[
        Annotated[str, Field(max_length=METADATA_KEY_MAX_CHARS)],
        Annotated[str, Field(max_length=METADATA_VALUE_MAX_CHARS)],
    ],
    Field(max_length=METADATA_MAX_PAIRS),
]


class BatchCreate(BaseModel):
    """``POST /v1/batches``. ``metadata.policy`` (if given) routes lines that choose no profile."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: StrictStr = Field(description="A file uploaded with purpose `batch`.")
    endpoint: Literal["/v1/chat/completions"] = Field(description="Only `/v1/chat/completions` is served.")
    completion_window: Literal["24h"]
    metadata: Metadata | None = None
    output_expires_after: OutputExpiresAfter | None = None


class BatchErrorItem(BaseModel):
    code: str | None = None
    line: int | None = None
    message: str | None = None
    param: str | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchErrorItem]


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class BatchUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = InputTokensDetails()
    output_tokens: int
    output_tokens_details: OutputTokensDetails = OutputTokensDetails()
    total_tokens: int


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatusName
    created_at: int
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: BatchErrors | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    expires_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None
    model: str | None = None
    usage: BatchUsage | None = None
    hera_batch_id: str | None = Field(
        default=None, description="The native batch its lines run in: GET /v1/agent-batches/{id}."
    )


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


# -- chat completions -------------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class ChatCompletionCreate(BaseModel):
    """The request body. Sampling parameters (``temperature``, ``max_tokens``, ...) are accepted
    and ignored: the routing policy chooses the model of every step and its parameters."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr = Field(min_length=1, description="A routing profile from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Kept with the request; `policy` routes it.")
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is produced.")
    user: StrictStr | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class HeraStep(BaseModel):
    """One executed step of the agent: who ran it, which routing branch chose that, its cost."""

    seq: int
    part: int
    executor: str
    branch: str
    model: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    subtask: str
    output: str | None


class HeraExtension(BaseModel):
    request_id: str
    policy: str
    status: str
    cost_usd: float
    slm_steps: int
    llm_steps: int
    steps: list[HeraStep]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
    hera: HeraExtension


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class HeraChunkExtension(BaseModel):
    request_id: str
    step: HeraStep | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    hera: HeraChunkExtension | None = None


# -- models -----------------------------------------------------------------------------------


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "hera-router"
    policy: str = Field(description="The routing policy requests with this model run under.")
    description: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
