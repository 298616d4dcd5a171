"""``/v1/batches``: create from an uploaded file, retrieve, list, cancel (OpenAI's Batch API).

Every valid line runs as one routed agent request; when all have finished (or the 24h window
has passed) the first read of the batch writes its output and error files (see ``service.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hera_router.api.auth import CurrentCaller
from hera_router.api.openai.deps import ERRORS, Service
from hera_router.api.openai.errors import OpenAIErrorBody
from hera_router.api.openai.schemas import BatchCreate, BatchList, BatchObject

router = APIRouter(prefix="/v1/batches", tags=["openai: batches"], responses=ERRORS)


@router.post("", summary="Create a batch from an uploaded file")
def create_batch(body: BatchCreate, caller: CurrentCaller, service: Service) -> BatchObject:
    """Validates the file and queues its lines. Malformed lines go to the error file and the
    others run; a `custom_id` used twice fails the whole batch (`status: failed`, `errors`)."""
    return service.create_batch(caller.tenant_id, body)


@router.get("", summary="List batches, newest first")
def list_batches(
    caller: CurrentCaller,
    service: Service,
    after: Annotated[str | None, Query(description="A batch id: the page starts after it.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    data, has_more = service.list_batches(caller.tenant_id, after=after, limit=limit)
    return BatchList(
        data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None, has_more=has_more
    )


@router.get("/{batch_id}", summary="A batch's status, counts and files")
def retrieve_batch(batch_id: str, caller: CurrentCaller, service: Service) -> BatchObject:
    return service.get_batch(caller.tenant_id, batch_id)


@router.post(
    "/{batch_id}/cancel",
    summary="Cancel a batch",
    responses={409: {"model": OpenAIErrorBody, "description": "The batch already finished."}},
)
def cancel_batch(batch_id: str, caller: CurrentCaller, service: Service) -> BatchObject:
    """Moves the batch to `cancelling` and cancels its unfinished requests; the next read writes
    the files of what finished and answers `cancelled`."""
    return service.cancel_batch(caller.tenant_id, batch_id)
