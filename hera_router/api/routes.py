"""The native producer routes: agent requests, agent batches, health.

Routes are thin: authenticate, hand the body to the submission service or the views, shape the
answer. Service errors map to statuses in ``app.py``; a missing or foreign object is always 404.
Handlers are plain ``def`` (FastAPI runs them in its thread pool, the database calls are
blocking) except where the raw body must be read, which is async and then offloads the work.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from hera_router.api.auth import CurrentCaller
from hera_router.api.costs import BudgetStatus, cost_report, read_budget, rows_csv
from hera_router.api.errors import InvalidRequestError
from hera_router.api.health import broker_problem, database_problem, idle_queues_problem, queue_consumers
from hera_router.api.schemas import (
    AgentRequestItem,
    BatchAccepted,
    BatchCancelled,
    BatchRejectedBody,
    BatchStatus,
    ErrorBody,
    Health,
    RequestAccepted,
    RequestCancelled,
    RequestDetail,
)
from hera_router.api.state import ApiState, api_state
from hera_router.api.views import rejected_lines

State = Annotated[ApiState, Depends(api_state)]

JSONL_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"}
)
UPLOAD_FIELD = "file"

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or not a valid one."},
    404: {"model": ErrorBody, "description": "No such object for this tenant."},
    422: {"model": ErrorBody, "description": "The input is not valid; the message names the field."},
}

OVER_BUDGET = "The tenant is at its daily or monthly budget; the message names it (`hera-router tenants budget`)."

router = APIRouter(responses=ERRORS)


@router.post(
    "/v1/agent-requests",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["agent requests"],
    summary="Submit one agent request",
    responses={413: {"model": ErrorBody}, 402: {"model": ErrorBody, "description": OVER_BUDGET}},
)
def submit_request(item: AgentRequestItem, caller: CurrentCaller, state: State) -> RequestAccepted:
    """Queue one request. It runs asynchronously; poll `GET /v1/agent-requests/{id}` for its outcome."""
    request = state.submissions.submit_request(caller.tenant_id, item)
    return RequestAccepted(
        id=request.id,
        status=request.status,
        policy=request.policy,
        custom_id=request.custom_id,
        created_at=request.created_at,
    )


@router.get("/v1/agent-requests/{request_id}", tags=["agent requests"], summary="A request, its steps and cost")
def get_request(request_id: uuid.UUID, caller: CurrentCaller, state: State) -> RequestDetail:
    detail = state.views.request_detail(caller.tenant_id, request_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent request {request_id}")
    return detail


@router.post(
    "/v1/agent-requests/{request_id}/cancel",
    tags=["agent requests"],
    summary="Cancel a queued or running request",
    responses={409: {"model": ErrorBody, "description": "The request already finished."}},
)
def cancel_request(request_id: uuid.UUID, caller: CurrentCaller, state: State) -> RequestCancelled:
    request = state.submissions.cancel_request(caller.tenant_id, request_id)
    return RequestCancelled(id=request.id, status=request.status)


_BATCH_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "A JSON list of request objects, a JSONL file as the body (`application/x-ndjson`), or a JSONL file "
            f"uploaded as multipart field `{UPLOAD_FIELD}`. Each object: `input` (required), `custom_id`, "
            "`metadata`, `policy`, `priority`, `gold_answer`."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/components/schemas/AgentRequestItem"},
                }
            },
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                    "required": [UPLOAD_FIELD],
                }
            },
        },
    }
}


@router.post(
    "/v1/agent-batches",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["agent batches"],
    summary="Submit a batch (JSON list or JSONL)",
    openapi_extra=_BATCH_BODY_DOC,
    responses={
        402: {"model": ErrorBody, "description": OVER_BUDGET},
        413: {"model": ErrorBody, "description": "Too many requests, or too many bytes."},
        415: {"model": ErrorBody, "description": "The body is neither JSON, JSONL nor a multipart upload."},
        422: {
            "model": BatchRejectedBody,
            "description": "No line of the batch was acceptable (`rejected`), or a parameter is not valid (`details`).",
        },
    },
)
async def submit_batch(
    request: Request,
    caller: CurrentCaller,
    state: State,
    policy: Annotated[str | None, Query(description="Policy for items that name none.")] = None,
    name: Annotated[str | None, Query(max_length=128, description="A label for the batch.")] = None,
) -> BatchAccepted:
    """Queue every valid line; invalid lines are reported in `rejected` by line number and do not stop the
    others. If no line is valid, nothing is created and the answer is 422 with every line's error."""
    source = await _batch_source(request)
    batch, _ = await run_in_threadpool(
        state.submissions.submit_batch, caller.tenant_id, source, policy=policy, name=name
    )
    return BatchAccepted(
        id=batch.id,
        name=batch.name,
        policy=batch.policy,
        accepted=batch.accepted,
        rejected=rejected_lines(batch),
        created_at=batch.created_at,
    )


async def _batch_source(request: Request) -> bytes | list[object]:
    """The batch as JSONL bytes or a decoded JSON list, whichever way the client sent it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=0) as form:
            upload = form.get(UPLOAD_FIELD)
            if not isinstance(upload, UploadFile):
                raise InvalidRequestError(f"the multipart upload has no file in the field `{UPLOAD_FIELD}`")
            return await upload.read()
    if content_type in JSONL_TYPES:
        return await request.body()
    if content_type == "application/json":
        body = await request.body()
        try:
            entries = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(
                f"the body is not valid JSON ({exc}); to send JSONL, use Content-Type application/x-ndjson"
            ) from None
        if not isinstance(entries, list):
            raise InvalidRequestError(
                "the body must be a JSON list of request objects; to send a single request, "
                "POST it to /v1/agent-requests"
            )
        return entries
    shown = content_type or "none"
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        f"unsupported Content-Type {shown!r}: send a JSON list (application/json), JSONL "
        f"(application/x-ndjson), or a multipart upload with the file in the field `{UPLOAD_FIELD}`",
    )


@router.get("/v1/agent-batches/{batch_id}", tags=["agent batches"], summary="Progress and cost of a batch")
def get_batch(batch_id: uuid.UUID, caller: CurrentCaller, state: State) -> BatchStatus:
    batch = state.views.batch_status(caller.tenant_id, batch_id)
    if batch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent batch {batch_id}")
    return batch


@router.get(
    "/v1/agent-batches/{batch_id}/results",
    tags=["agent batches"],
    summary="Download a batch's results (JSONL)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object per request."}},
)
def get_batch_results(batch_id: uuid.UUID, caller: CurrentCaller, state: State) -> StreamingResponse:
    """One line per request, in submission order: `custom_id`, `request_id`, `status`, `final_answer`,
    `error`, `cost_usd`, `slm_steps`, `llm_steps`, and `gold_answer` when one was given. Requests
    still running appear with their current status."""
    lines = state.views.batch_results(caller.tenant_id, batch_id)
    if lines is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent batch {batch_id}")
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-results.jsonl"'},
    )


@router.post(
    "/v1/agent-batches/{batch_id}/cancel",
    tags=["agent batches"],
    summary="Cancel the batch's queued and running requests",
)
def cancel_batch(batch_id: uuid.UUID, caller: CurrentCaller, state: State) -> BatchCancelled:
    batch, cancelled = state.submissions.cancel_batch(caller.tenant_id, batch_id)
    return BatchCancelled(id=batch.id, cancelled_at=batch.cancelled_at, cancelled_requests=cancelled)


@router.get(
    "/healthz",
    tags=["health"],
    summary="Liveness, database and broker check, and each queue's consumers (no auth)",
    responses={
        503: {"model": ErrorBody, "description": "The database is unreachable or not migrated, or the broker is down."}
    },
)
def healthz(state: State) -> Health:
    """200 while the API can accept work; `status` is `degraded` (with a `warning`) when a queue
    every request passes through has no live consumer, so accepted requests would stay queued."""
    problem = database_problem(state.engine) or broker_problem(state.celery)
    if problem is not None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, problem)
    consumers = queue_consumers(state.celery)
    warning = None if consumers is None else idle_queues_problem(state.settings, consumers)
    return Health(status="degraded" if warning else "ok", database="ok", broker="ok", queues=consumers, warning=warning)


@router.get("/v1/budget", tags=["costs"], summary="The tenant's budgets and its spend in each window")
def get_budget(caller: CurrentCaller, state: State) -> BudgetStatus:
    return read_budget(state.sessions, state.settings, caller.tenant_id)


@router.get(
    "/v1/costs",
    tags=["costs"],
    summary="The tenant's spend per UTC day, role and model, by cost component",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`."}},
)
def get_costs(
    caller: CurrentCaller,
    state: State,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601; naive means UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Up to, not including, this time.")] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """Each row's components (tokens, GPU time, energy, transfer) add up to its `total_usd`;
    `cloud_tokens_usd` is the paper's cost (cloud token dollars only)."""
    window = [
        None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC) for value in (since, until)
    ]
    report = cost_report(state.sessions, caller.tenant_id, window[0], window[1])
    if format == "csv":
        return PlainTextResponse(rows_csv(report.rows), media_type="text/csv")
    return report
