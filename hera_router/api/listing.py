"""``GET /v1/agent-requests`` and ``GET /v1/agent-batches``: a tenant's requests and batches,
newest first, with cursor pagination and status filters, so a lost id is not lost work.

The cursor is opaque to clients (``next_cursor`` of the previous page); inside it is the
``(created_at, id)`` of the last row shown, so pages are keyset range scans and rows created
meanwhile neither repeat nor shift the walk.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from hera_router.api.auth import CurrentCaller
from hera_router.api.schemas import ErrorBody
from hera_router.api.state import ApiState, api_state
from hera_router.db.enums import RequestStatus
from hera_router.db.repositories import BatchRepository, RequestRepository
from hera_router.db.session import session_scope

State = Annotated[ApiState, Depends(api_state)]

router = APIRouter(
    responses={
        401: {"model": ErrorBody, "description": "No API key, or not a valid one."},
        422: {"model": ErrorBody, "description": "A parameter is not valid; the message names it."},
    }
)

Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]


class RequestSummary(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID | None
    custom_id: str | None
    status: RequestStatus
    policy: str
    cost_usd: float
    slm_steps: int
    llm_steps: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class RequestPage(BaseModel):
    data: list[RequestSummary]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class BatchSummary(BaseModel):
    id: uuid.UUID
    name: str | None
    policy: str
    accepted: int
    rejected: int
    cancelled_at: datetime | None
    created_at: datetime


class BatchPage(BaseModel):
    data: list[BatchSummary]
    has_more: bool
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, row_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "`cursor` is not a cursor this API gave out; pass the `next_cursor` of the previous page, or none",
        ) from None


@router.get("/v1/agent-requests", tags=["agent requests"], summary="List requests, newest first")
def list_requests(
    caller: CurrentCaller,
    state: State,
    status_filter: Annotated[
        list[RequestStatus] | None, Query(alias="status", description="Only these statuses (repeatable).")
    ] = None,
    batch_id: Annotated[uuid.UUID | None, Query(description="Only this batch's requests.")] = None,
    include_nodes: Annotated[
        bool,
        Query(
            description="Also list the node requests of plans with dependencies (metadata `graph_request`); "
            "by default only their graph request is listed, whose view (`GET /v1/agent-requests/{id}`) links them."
        ),
    ] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RequestPage:
    before = decode_cursor(cursor)
    with session_scope(state.sessions) as session:
        rows = RequestRepository(session).page_for_tenant(
            caller.tenant_id,
            before=before,
            limit=limit + 1,
            statuses=status_filter or (),
            batch_id=batch_id,
            include_nodes=include_nodes,
        )
        shown = [
            RequestSummary(
                id=row.id,
                batch_id=row.batch_id,
                custom_id=row.custom_id,
                status=row.status,
                policy=row.policy,
                cost_usd=row.cost_usd,
                slm_steps=row.slm_steps,
                llm_steps=row.llm_steps,
                error=row.error,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows[:limit]
        ]
    more = len(rows) > limit
    return RequestPage(
        data=shown, has_more=more, next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None
    )


@router.get("/v1/agent-batches", tags=["agent batches"], summary="List batches, newest first")
def list_batches(
    caller: CurrentCaller,
    state: State,
    status_filter: Annotated[
        Literal["active", "finished", "cancelled"] | None,
        Query(
            alias="status",
            description="`active`: some request queued or running; `finished`: none is; `cancelled`: cancelled.",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> BatchPage:
    before = decode_cursor(cursor)
    with session_scope(state.sessions) as session:
        rows = BatchRepository(session).page_for_tenant(
            caller.tenant_id, before=before, limit=limit + 1, state=status_filter
        )
        shown = [
            BatchSummary(
                id=row.id,
                name=row.name,
                policy=row.policy,
                accepted=row.accepted,
                rejected=len(row.rejected),
                cancelled_at=row.cancelled_at,
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]
    more = len(rows) > limit
    return BatchPage(
        data=shown, has_more=more, next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None
    )
