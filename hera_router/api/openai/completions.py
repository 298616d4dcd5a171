"""A finished agent request as OpenAI objects: a ``chat.completion``, its chunks, a batch output
or error line.

The final answer is the assistant message; ``usage`` sums the tokens of every model call the
request made (all steps, retries and escalations included, as they were all paid for); ``hera``
lists each step with the executor that ran it, the routing branch that chose it and its cost.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hera_router.api.openai import ids
from hera_router.api.openai.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    CompletionUsage,
    HeraExtension,
    HeraStep,
)
from hera_router.db.enums import CallStatus, RequestStatus, SubtaskStatus
from hera_router.db.models import ModelCall, Request, Subtask

FINISHED_STEP_STATUSES = frozenset({SubtaskStatus.SUCCEEDED, SubtaskStatus.FAILED})


def profile_of(request: Request) -> str:
    """The profile id the request was submitted under (kept in its metadata)."""
    openai = request.meta.get("openai") if isinstance(request.meta, dict) else None
    model = openai.get("profile") if isinstance(openai, dict) else None
    return str(model) if model else f"hera-router/{request.policy}"


def steps_of(subtasks: Sequence[Subtask], calls: Sequence[ModelCall]) -> list[HeraStep]:
    """Every step that has run (succeeded or failed), in execution order."""
    by_subtask: dict[uuid.UUID, list[ModelCall]] = defaultdict(list)
    for call in calls:
        if call.subtask_id is not None:
            by_subtask[call.subtask_id].append(call)
    steps: list[HeraStep] = []
    for subtask in subtasks:
        if subtask.status not in FINISHED_STEP_STATUSES:
            continue
        own = by_subtask.get(subtask.id, [])
        answered = [call for call in own if call.status is CallStatus.OK]
        steps.append(
            HeraStep(
                seq=subtask.seq,
                part=subtask.part,
                executor=subtask.executor.value,
                branch=subtask.branch,
                model=answered[-1].model if answered else (own[-1].model if own else None),
                tokens_in=sum(call.tokens_in for call in own),
                tokens_out=sum(call.tokens_out for call in own),
                cost_usd=sum(call.cost_usd for call in own),
                subtask=subtask.text,
                output=subtask.output,
            )
        )
    return steps


def usage_of(calls: Sequence[ModelCall]) -> CompletionUsage:
    prompt = sum(call.tokens_in for call in calls)
    completion = sum(call.tokens_out for call in calls)
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def hera_extension(request: Request, steps: list[HeraStep]) -> HeraExtension:
    return HeraExtension(
        request_id=str(request.id),
        policy=request.policy,
        status=request.status.value,
        cost_usd=request.cost_usd,
        slm_steps=request.slm_steps,
        llm_steps=request.llm_steps,
        steps=steps,
    )


def chat_completion(request: Request, subtasks: Sequence[Subtask], calls: Sequence[ModelCall]) -> ChatCompletion:
    """The ``chat.completion`` of a succeeded request."""
    return ChatCompletion(
        id=ids.completion_id(request.id),
        created=int(request.created_at.timestamp()),
        model=profile_of(request),
        choices=[Choice(message=AssistantMessage(content=request.final_answer or ""))],
        usage=usage_of(calls),
        hera=hera_extension(request, steps_of(subtasks, calls)),
    )


FAILURE_CODES: dict[RequestStatus, str] = {
    RequestStatus.FAILED: "agent_failed",
    RequestStatus.CANCELLED: "batch_cancelled",
}


def output_line(request: Request, subtasks: Sequence[Subtask], calls: Sequence[ModelCall]) -> dict[str, Any]:
    """A line of the output file: a succeeded request's completion, as OpenAI writes it."""
    return {
        "id": ids.batch_request_id(request.id),
        "custom_id": request.custom_id,
        "response": {
            "status_code": 200,
            "request_id": str(request.id),
            "body": chat_completion(request, subtasks, calls).model_dump(mode="json"),
        },
        "error": None,
    }


def failure_line(request: Request, *, code: str | None = None) -> dict[str, Any]:
    """A line of the error file for a request that did not succeed (failed, cancelled, expired)."""
    return {
        "id": ids.batch_request_id(request.id),
        "custom_id": request.custom_id,
        "response": None,
        "error": {
            "code": code or FAILURE_CODES.get(request.status, "agent_failed"),
            "message": request.error or f"the request ended {request.status.value} without an answer",
        },
    }


def rejected_line(record: dict[str, Any], batch_key: uuid.UUID) -> dict[str, Any]:
    """A line of the error file for an input line that never ran (malformed)."""
    line = int(record.get("line", 0))
    return {
        "id": f"{ids.BATCH_REQUEST_PREFIX}{batch_key.hex[:24]}{line:08d}",
        "custom_id": record.get("custom_id"),
        "response": None,
        "error": {
            "code": record.get("code") or "invalid_request",
            "message": record.get("message") or f"line {line}: {record.get('error')}",
            "line": line,
            "param": record.get("param"),
        },
    }
