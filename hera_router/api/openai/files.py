"""``/v1/files``: upload a batch input file, read, list, delete, download (OpenAI's Files API).

Uploads are ``multipart/form-data`` with ``file`` and ``purpose`` (only ``batch`` is served), and
optionally ``expires_after[anchor]=created_at`` with ``expires_after[seconds]``. The size limit
is ``HERA_OPENAI__MAX_FILE_BYTES``, answered with 413 naming it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from hera_router.api.auth import CurrentCaller
from hera_router.api.openai.deps import ERRORS, Service
from hera_router.api.openai.errors import OpenAIError
from hera_router.api.openai.schemas import FileDeleted, FileList, FileObject

router = APIRouter(prefix="/v1/files", tags=["openai: files"], responses=ERRORS)


@router.post("", summary="Upload a batch input file (JSONL)")
async def create_file(
    caller: CurrentCaller,
    service: Service,
    file: Annotated[UploadFile, File(description="The JSONL file: one request per line.")],
    purpose: Annotated[str, Form(description="Only `batch` is served.")],
    expires_after_anchor: Annotated[
        Literal["created_at"] | None, Form(alias="expires_after[anchor]", description="Only `created_at`.")
    ] = None,
    expires_after_seconds: Annotated[
        int | None, Form(alias="expires_after[seconds]", ge=3600, le=2_592_000, description="Lifetime in seconds.")
    ] = None,
) -> FileObject:
    limit = service.settings.openai.max_file_bytes
    if file.size is not None and file.size > limit:
        raise OpenAIError(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the file has {file.size:,} bytes, more than the limit of {limit:,} bytes "
            "(HERA_OPENAI__MAX_FILE_BYTES); split it into several files",
            param="file",
            code="file_too_large",
        )
    content = await file.read()
    return await run_in_threadpool(
        service.create_file,
        caller.tenant_id,
        filename=file.filename or "upload.jsonl",
        purpose=purpose,
        content=content,
        expires_after_s=expires_after_seconds,
    )


@router.get("", summary="List files, newest first")
def list_files(
    caller: CurrentCaller,
    service: Service,
    after: Annotated[str | None, Query(description="A file id: the page starts after it.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    purpose: Annotated[Literal["batch", "batch_output"] | None, Query()] = None,
) -> FileList:
    data, has_more = service.list_files(caller.tenant_id, after=after, limit=limit, order=order, purpose=purpose)
    return FileList(
        data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None, has_more=has_more
    )


@router.get("/{file_id}", summary="A file's metadata")
def retrieve_file(file_id: str, caller: CurrentCaller, service: Service) -> FileObject:
    return service.get_file(caller.tenant_id, file_id)


@router.delete("/{file_id}", summary="Delete a file")
def delete_file(file_id: str, caller: CurrentCaller, service: Service) -> FileDeleted:
    return FileDeleted(id=service.delete_file(caller.tenant_id, file_id), deleted=True)


@router.get(
    "/{file_id}/content",
    summary="Download a file's bytes",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def file_content(file_id: str, caller: CurrentCaller, service: Service) -> StreamingResponse:
    """The bytes as uploaded, or a batch's output or error file (JSONL, one result per line)."""
    file, chunks = service.file_content(caller.tenant_id, file_id)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{file.id}.jsonl"', "Content-Length": str(file.bytes)},
    )
