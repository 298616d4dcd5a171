"""The OpenAI-compatible files and batches (``/v1/files``, ``/v1/batches``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from hera_router.db.base import utcnow
from hera_router.db.enums import OpenAIBatchStatus
from hera_router.db.models import ModelCall, OpenAIBatch, OpenAIFile, Request
from hera_router.db.repositories._dml import rows_changed

CONTENT_CHUNK_BYTES = 1024 * 1024
"""Bytes read per query while streaming a file's content: a download never holds it all."""


class OpenAIFileRepository:
    """Files: metadata reads never load the content; the content is read in slices."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        tenant_id: uuid.UUID,
        filename: str,
        purpose: str,
        content: bytes,
        expires_at: datetime | None,
    ) -> OpenAIFile:
        file = OpenAIFile(
            tenant_id=tenant_id,
            filename=filename,
            purpose=purpose,
            size=len(content),
            content=content,
            expires_at=expires_at,
        )
        self.session.add(file)
        self.session.flush()
        return file

    def get(self, file_id: uuid.UUID, tenant_id: uuid.UUID, *, now: datetime | None = None) -> OpenAIFile | None:
        """The file, or None if it does not exist, belongs to another tenant, or has expired."""
        file = self.session.scalars(
            select(OpenAIFile).where(OpenAIFile.id == file_id, OpenAIFile.tenant_id == tenant_id)
        ).one_or_none()
        if file is None or (file.expires_at is not None and file.expires_at <= (now or utcnow())):
            return None
        return file

    def content(self, file_id: uuid.UUID) -> bytes:
        """The whole content (for validating a batch input file)."""
        return self.session.scalar(select(OpenAIFile.content).where(OpenAIFile.id == file_id)) or b""

    def content_chunk(self, file_id: uuid.UUID, offset: int, size: int = CONTENT_CHUNK_BYTES) -> bytes:
        """``size`` bytes from ``offset`` (0-based); empty past the end. ``substr`` counts from 1
        and works on ``bytea`` and on SQLite BLOBs alike."""
        chunk = self.session.scalar(
            select(func.substr(OpenAIFile.content, offset + 1, size)).where(OpenAIFile.id == file_id)
        )
        return bytes(chunk or b"")

    def page(
        self,
        tenant_id: uuid.UUID,
        *,
        after: OpenAIFile | None,
        limit: int,
        descending: bool,
        purpose: str | None = None,
        now: datetime | None = None,
    ) -> Sequence[OpenAIFile]:
        """Up to ``limit`` unexpired files of the tenant after ``after`` in (created_at, id) order."""
        now = now or utcnow()
        key = tuple_(OpenAIFile.created_at, OpenAIFile.id)
        statement = select(OpenAIFile).where(
            OpenAIFile.tenant_id == tenant_id,
            (OpenAIFile.expires_at.is_(None)) | (OpenAIFile.expires_at > now),
        )
        if purpose is not None:
            statement = statement.where(OpenAIFile.purpose == purpose)
        if after is not None:
            bound = tuple_(after.created_at, after.id)
            statement = statement.where(key < bound if descending else key > bound)
        order = (
            (OpenAIFile.created_at.desc(), OpenAIFile.id.desc())
            if descending
            else (OpenAIFile.created_at, OpenAIFile.id)
        )
        return self.session.scalars(statement.order_by(*order).limit(limit)).all()

    def delete(self, file_id: uuid.UUID, tenant_id: uuid.UUID) -> bool:
        result = self.session.execute(
            delete(OpenAIFile).where(OpenAIFile.id == file_id, OpenAIFile.tenant_id == tenant_id)
        )
        return rows_changed(result) == 1

    def delete_expired(self, limit: int = 100, *, now: datetime | None = None) -> int:
        """Remove up to ``limit`` files past their expiry (they already read as absent)."""
        expired = select(OpenAIFile.id).where(OpenAIFile.expires_at <= (now or utcnow())).limit(limit).scalar_subquery()
        return rows_changed(self.session.execute(delete(OpenAIFile).where(OpenAIFile.id.in_(expired))))


class OpenAIBatchRepository:
    """OpenAI-style batches. Status changes are guarded UPDATEs: two API replicas finalizing or
    cancelling the same batch at once cannot both succeed."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, batch: OpenAIBatch) -> OpenAIBatch:
        self.session.add(batch)
        self.session.flush()
        return batch

    def get(self, batch_id: uuid.UUID, tenant_id: uuid.UUID) -> OpenAIBatch | None:
        return self.session.scalars(
            select(OpenAIBatch).where(OpenAIBatch.id == batch_id, OpenAIBatch.tenant_id == tenant_id)
        ).one_or_none()

    def page(self, tenant_id: uuid.UUID, *, after: OpenAIBatch | None, limit: int) -> Sequence[OpenAIBatch]:
        """Up to ``limit`` of the tenant's batches, newest first, after ``after``."""
        statement = select(OpenAIBatch).where(OpenAIBatch.tenant_id == tenant_id)
        if after is not None:
            statement = statement.where(
                tuple_(OpenAIBatch.created_at, OpenAIBatch.id) < tuple_(after.created_at, after.id)
            )
        return self.session.scalars(
            statement.order_by(OpenAIBatch.created_at.desc(), OpenAIBatch.id.desc()).limit(limit)
        ).all()

    def transition(
        self, batch_id: uuid.UUID, from_statuses: Collection[OpenAIBatchStatus], values: dict[str, Any]
    ) -> bool:
        """Apply ``values`` (which include the new ``status``) if the batch is in ``from_statuses``."""
        result = self.session.execute(
            update(OpenAIBatch)
            .where(OpenAIBatch.id == batch_id, OpenAIBatch.status.in_(list(from_statuses)))
            .values(**values)
        )
        return rows_changed(result) == 1

    def refresh(self, batch: OpenAIBatch) -> None:
        self.session.refresh(batch)

    def usage(self, batch_id: uuid.UUID) -> tuple[int, int]:
        """(input, output) tokens of every model call of the native batch's requests."""
        row = self.session.execute(
            select(
                func.coalesce(func.sum(ModelCall.tokens_in), 0),
                func.coalesce(func.sum(ModelCall.tokens_out), 0),
            )
            .join(Request, Request.id == ModelCall.request_id)
            .where(Request.batch_id == batch_id)
        ).one()
        return int(row[0]), int(row[1])

    def iter_requests(self, batch_id: uuid.UUID, page_size: int = 500) -> Iterator[Sequence[Request]]:
        """The native batch's requests page by page, in line order (keyset on created_at, id)."""
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            statement = select(Request).where(Request.batch_id == batch_id)
            if after is not None:
                statement = statement.where(tuple_(Request.created_at, Request.id) > tuple_(*after))
            page = self.session.scalars(statement.order_by(Request.created_at, Request.id).limit(page_size)).all()
            if page:
                yield page
            if len(page) < page_size:
                return
            after = (page[-1].created_at, page[-1].id)
