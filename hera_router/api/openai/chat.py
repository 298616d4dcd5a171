"""``POST /v1/chat/completions``: run the routed agent for a conversation and answer with its
final answer, synchronously or as a stream of its steps.

The request is an ordinary agent request (queued through the outbox, run by the workers); this
route only waits for it, reading its progress from the database every
``HERA_OPENAI__POLL_INTERVAL_S``. It waits at most ``HERA_OPENAI__CHAT_TIMEOUT_S``: past that the
answer is 504 with ``x-should-retry: false`` (a retry would start the agent again) and a message
naming the request, which keeps running and can be read at ``GET /v1/agent-requests/{id}``;
long work belongs in the Batch API.

``stream=true`` answers ``text/event-stream`` in OpenAI's ``chat.completion.chunk`` format: a
first chunk with the assistant role, one chunk per finished step (empty delta, the step in the
``hera`` extension field, so the streamed text is exactly the final answer), the final answer as
content, a chunk with ``finish_reason``, the usage chunk if ``stream_options.include_usage``,
then ``data: [DONE]``. A failure mid-stream is sent as ``data: {"error": {...}}``, which the
official client raises as ``APIError``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from hera_router.api.auth import CurrentCaller
from hera_router.api.openai import ids
from hera_router.api.openai.completions import chat_completion, steps_of, usage_of
from hera_router.api.openai.deps import ERRORS, Service
from hera_router.api.openai.errors import OpenAIError, OpenAIErrorBody, error_body
from hera_router.api.openai.profiles import Profile
from hera_router.api.openai.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
    ChunkChoice,
    ChunkDelta,
    HeraChunkExtension,
)
from hera_router.api.openai.service import NO_RETRY, ChatProgress, OpenAIService
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, RequestStatus

router = APIRouter(prefix="/v1/chat", tags=["openai: chat"], responses=ERRORS)


SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}
"""One server-sent event of a streamed chat completion, as the OpenAPI document states it."""


@router.post(
    "/completions",
    summary="Run the routed agent for a conversation",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "A `chat.completion`, or with `stream: true` an event stream of `chat.completion.chunk`s.",
            # Before OpenAPI 3.2 an event stream's `schema` describes one server-sent event: a JSON
            # `chat.completion.chunk` (or an error body, or `[DONE]`) in its `data` field.
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        502: {"model": OpenAIErrorBody, "description": "The agent failed or was cancelled; the message says why."},
        504: {
            "model": OpenAIErrorBody,
            "description": "The agent did not finish within HERA_OPENAI__CHAT_TIMEOUT_S; use the Batch API.",
        },
    },
)
async def create_chat_completion(
    body: ChatCompletionCreate, caller: CurrentCaller, service: Service
) -> ChatCompletion | StreamingResponse:
    request_id, profile = await run_in_threadpool(service.submit_chat, caller.tenant_id, body)
    timeout_s = service.settings.openai.chat_timeout_s
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _stream(service, request_id, profile, timeout_s, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    deadline = time.monotonic() + timeout_s
    while True:
        progress = await run_in_threadpool(service.chat_progress, request_id)
        if progress.request.status in TERMINAL_REQUEST_STATUSES:
            break
        if time.monotonic() >= deadline:
            raise OpenAIError(
                status.HTTP_504_GATEWAY_TIMEOUT,
                _timeout_message(request_id, timeout_s),
                code="timeout",
                headers=NO_RETRY,
            )
        await asyncio.sleep(service.settings.openai.poll_interval_s)
    if progress.request.status is not RequestStatus.SUCCEEDED:
        message, code = _failure(progress)
        raise OpenAIError(status.HTTP_502_BAD_GATEWAY, message, code=code, headers=NO_RETRY)
    return chat_completion(progress.request, progress.subtasks, progress.calls)


def _timeout_message(request_id: uuid.UUID, timeout_s: float) -> str:
    return (
        f"the agent did not finish within {timeout_s:g} s (HERA_OPENAI__CHAT_TIMEOUT_S); it keeps running as agent "
        f"request {request_id}, whose answer GET /v1/agent-requests/{request_id} shows. Send long work through the "
        "Batch API instead: upload a JSONL file to POST /v1/files, then POST /v1/batches"
    )


def _failure(progress: ChatProgress) -> tuple[str, str]:
    request = progress.request
    verb = "was cancelled" if request.status is RequestStatus.CANCELLED else "failed"
    reason = f": {request.error}" if request.error else ""
    code = "agent_cancelled" if request.status is RequestStatus.CANCELLED else "agent_failed"
    return f"the agent {verb}{reason} (agent request {request.id}: GET /v1/agent-requests/{request.id})", code


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _chunk(
    request_id: uuid.UUID,
    profile: Profile,
    created: int,
    delta: ChunkDelta | None = None,
    *,
    finish: bool = False,
    hera: HeraChunkExtension | None = None,
    progress: ChatProgress | None = None,
) -> bytes:
    choices = (
        []
        if progress is not None
        else [ChunkChoice(delta=delta or ChunkDelta(), finish_reason="stop" if finish else None)]
    )
    chunk = ChatCompletionChunk(
        id=ids.completion_id(request_id),
        created=created,
        model=profile.model,
        choices=choices,
        usage=usage_of(progress.calls) if progress is not None else None,
        hera=hera,
    ).model_dump(mode="json")
    for choice in chunk["choices"]:
        choice["delta"] = {key: value for key, value in choice["delta"].items() if value is not None}
    if chunk["hera"] is None:
        del chunk["hera"]
    return _event(chunk)


async def _stream(
    service: OpenAIService, request_id: uuid.UUID, profile: Profile, timeout_s: float, include_usage: bool
) -> AsyncIterator[bytes]:
    created = int(time.time())
    yield _chunk(
        request_id,
        profile,
        created,
        ChunkDelta(role="assistant", content=""),
        hera=HeraChunkExtension(request_id=str(request_id)),
    )
    sent = 0
    deadline = time.monotonic() + timeout_s
    while True:
        progress = await run_in_threadpool(service.chat_progress, request_id)
        steps = steps_of(progress.subtasks, progress.calls)
        for step in steps[sent:]:
            yield _chunk(request_id, profile, created, hera=HeraChunkExtension(request_id=str(request_id), step=step))
        sent = max(sent, len(steps))
        if progress.request.status in TERMINAL_REQUEST_STATUSES:
            break
        if time.monotonic() >= deadline:
            yield _event(
                error_body(status.HTTP_504_GATEWAY_TIMEOUT, _timeout_message(request_id, timeout_s), code="timeout")
            )
            yield b"data: [DONE]\n\n"
            return
        await asyncio.sleep(service.settings.openai.poll_interval_s)
    if progress.request.status is not RequestStatus.SUCCEEDED:
        message, code = _failure(progress)
        yield _event(error_body(status.HTTP_502_BAD_GATEWAY, message, code=code))
        yield b"data: [DONE]\n\n"
        return
    yield _chunk(request_id, profile, created, ChunkDelta(content=progress.request.final_answer or ""))
    yield _chunk(request_id, profile, created, finish=True)
    if include_usage:
        yield _chunk(request_id, profile, created, progress=progress)
    yield b"data: [DONE]\n\n"
