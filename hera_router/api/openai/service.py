"""The OpenAI-compatible services: files, batches and chat requests (no FastAPI routing here).

Files live in Postgres (``openai_files``): one store every API replica and worker reads, which
commits with the batch that uses it. A batch's lines run as the requests of a native batch,
written with their first router hop in the outbox in the same transaction as the batch, so a
batch that was answered is never lost; the outbox rows are published after the commit.

A batch is finalized by whoever reads it first once every request has finished (or its window
has passed): ``retrieve``, ``list``, ``cancel`` and a download of its files all call
:meth:`OpenAIService.finalize_if_due`. Finalizing is one transaction that claims the batch with a
guarded UPDATE (``in_progress``/``cancelling`` → ``finalizing``), writes the output and error
files, and sets the final status, so two replicas reading at once write the files once; a
crash in between rolls back to the previous status and the next read finalizes again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import status
from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.openai import ids
from hera_router.api.openai.completions import failure_line, output_line, rejected_line
from hera_router.api.openai.errors import OpenAIError
from hera_router.api.openai.lines import LineLimits, MessagesError, ParsedFile, parse_file, render_messages
from hera_router.api.openai.profiles import Profile, Profiles
from hera_router.api.openai.schemas import (
    BatchCreate,
    BatchErrorItem,
    BatchErrors,
    BatchObject,
    BatchUsage,
    ChatCompletionCreate,
    FileObject,
    RequestCounts,
)
from hera_router.api.storable import value_problem
from hera_router.config import Settings
from hera_router.db.base import utcnow
from hera_router.db.enums import (
    ACTIVE_REQUEST_STATUSES,
    OPEN_OPENAI_BATCH_STATUSES,
    OpenAIBatchStatus,
    RequestStatus,
)
from hera_router.db.models import ModelCall, OpenAIBatch, OpenAIFile, Request, Subtask, Tenant
from hera_router.db.repositories import (
    BatchRepository,
    ModelCallRepository,
    OpenAIBatchRepository,
    OpenAIFileRepository,
    OutboxRepository,
    RequestRepository,
    SubtaskRepository,
)
from hera_router.db.session import session_scope
from hera_router.pipeline.budgets import breach
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.pipeline.outbox import Dispatcher

_Row = TypeVar("_Row", Subtask, ModelCall)
Publish = Callable[[Sequence[uuid.UUID]], object]

COMPLETION_WINDOW = timedelta(hours=24)
INSERT_CHUNK = 5_000
"""Rows per multi-row INSERT when a batch's requests are written."""
FINALIZE_PAGE = 500
EXPIRED_REASON = "the batch expired: its 24h completion window passed before this request finished"
CANCELLED_REASON = "cancelled with its batch"
DONE_STATUSES = frozenset(
    {OpenAIBatchStatus.COMPLETED, OpenAIBatchStatus.FAILED, OpenAIBatchStatus.EXPIRED, OpenAIBatchStatus.CANCELLED}
)
NO_RETRY = {"x-should-retry": "false"}


def unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def file_object(file: OpenAIFile) -> FileObject:
    return FileObject(
        id=ids.file_id(file.id),
        bytes=file.size,
        created_at=int(file.created_at.timestamp()),
        filename=file.filename,
        purpose="batch_output" if file.purpose == "batch_output" else "batch",
        expires_at=unix(file.expires_at),
    )


@dataclass(frozen=True, slots=True)
class ChatProgress:
    request: Request
    subtasks: Sequence[Subtask]
    calls: Sequence[ModelCall]


class OpenAIService:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher, publish: Publish
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.publish = publish
        self.profiles = Profiles(settings)
        self.limits = LineLimits(
            max_lines=settings.openai.max_batch_lines, max_input_chars=settings.api.max_input_chars
        )

    # -- files ------------------------------------------------------------------------------

    def create_file(
        self, tenant_id: uuid.UUID, *, filename: str, purpose: str, content: bytes, expires_after_s: int | None
    ) -> FileObject:
        if purpose != "batch":
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST,
                f"`purpose` {purpose!r} is not served here; upload batch input files with purpose 'batch'",
                param="purpose",
            )
        limit = self.settings.openai.max_file_bytes
        if len(content) > limit:
            raise OpenAIError(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"the file has {len(content):,} bytes, more than the limit of {limit:,} bytes "
                "(HERA_OPENAI__MAX_FILE_BYTES); split it into several files",
                param="file",
                code="file_too_large",
            )
        if not content.strip():
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST, "the file is empty; a batch file holds one request per line", param="file"
            )
        if (problem := value_problem(filename, "filename")) is not None:
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST, f"the file name {problem.removeprefix('`filename` ')}", param="file"
            )
        now = utcnow()
        expires = now + timedelta(seconds=expires_after_s or self.settings.openai.file_expiry_s)
        with session_scope(self.sessions) as session:
            files = OpenAIFileRepository(session)
            files.delete_expired(now=now)
            file = files.create(
                tenant_id=tenant_id,
                filename=filename[:512] or "upload.jsonl",
                purpose=purpose,
                content=content,
                expires_at=expires,
            )
            return file_object(file)

    def _file(self, session: Session, tenant_id: uuid.UUID, public_id: str, param: str = "file_id") -> OpenAIFile:
        key = ids.parse(public_id, ids.FILE_PREFIX)
        file = OpenAIFileRepository(session).get(key, tenant_id) if key is not None else None
        if file is None:
            raise OpenAIError(
                status.HTTP_404_NOT_FOUND, f"no file {public_id!r} (unknown, expired or deleted)", param=param
            )
        return file

    def get_file(self, tenant_id: uuid.UUID, public_id: str) -> FileObject:
        with session_scope(self.sessions) as session:
            return file_object(self._file(session, tenant_id, public_id))

    def list_files(
        self, tenant_id: uuid.UUID, *, after: str | None, limit: int, order: str, purpose: str | None
    ) -> tuple[list[FileObject], bool]:
        with session_scope(self.sessions) as session:
            cursor = self._file(session, tenant_id, after, "after") if after is not None else None
            page = OpenAIFileRepository(session).page(
                tenant_id, after=cursor, limit=limit + 1, descending=order == "desc", purpose=purpose
            )
            return [file_object(file) for file in page[:limit]], len(page) > limit

    def delete_file(self, tenant_id: uuid.UUID, public_id: str) -> str:
        with session_scope(self.sessions) as session:
            file = self._file(session, tenant_id, public_id)
            OpenAIFileRepository(session).delete(file.id, tenant_id)
            return ids.file_id(file.id)

    def file_content(self, tenant_id: uuid.UUID, public_id: str) -> tuple[FileObject, Iterator[bytes]]:
        """The file and an iterator over its bytes, read slice by slice in short transactions."""
        with session_scope(self.sessions) as session:
            file = self._file(session, tenant_id, public_id)
            shown = file_object(file)

        def chunks() -> Iterator[bytes]:
            offset = 0
            while offset < file.size:
                with session_scope(self.sessions) as session:
                    chunk = OpenAIFileRepository(session).content_chunk(file.id, offset)
                if not chunk:
                    return
                offset += len(chunk)
                yield chunk

        return shown, chunks()

    # -- batches ----------------------------------------------------------------------------

    def create_batch(self, tenant_id: uuid.UUID, body: BatchCreate) -> BatchObject:
        batch_policy = (body.metadata or {}).get("policy")
        if body.metadata is not None and (problem := value_problem(body.metadata, "metadata")) is not None:
            raise OpenAIError(status.HTTP_400_BAD_REQUEST, problem, param="metadata")
        if batch_policy is not None and batch_policy not in self.profiles.policies:
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST,
                f"`metadata.policy` {batch_policy!r} is not a known policy; choose one of "
                f"{', '.join(sorted(self.profiles.policies))}",
                param="metadata.policy",
            )
        with session_scope(self.sessions) as session:
            _check_budget(session, self.settings, tenant_id)
            file = self._file(session, tenant_id, body.input_file_id, "input_file_id")
            if file.purpose != "batch":
                raise OpenAIError(
                    status.HTTP_400_BAD_REQUEST,
                    f"file {body.input_file_id!r} has purpose {file.purpose!r}; "
                    "a batch reads a file uploaded with purpose 'batch'",
                    param="input_file_id",
                )
            content = OpenAIFileRepository(session).content(file.id)
        parsed = parse_file(content, self.profiles, self.limits, batch_policy=batch_policy)
        now = utcnow()
        batch = OpenAIBatch(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            input_file_id=file.id,
            endpoint=body.endpoint,
            completion_window=body.completion_window,
            meta=dict(body.metadata) if body.metadata is not None else None,
            output_expires_s=body.output_expires_after.seconds if body.output_expires_after else None,
            created_at=now,
            expires_at=now + COMPLETION_WINDOW,
            model=parsed.lines[0].profile.requested if parsed.lines else None,
        )
        message_ids: list[uuid.UUID] = []
        with session_scope(self.sessions) as session:
            if parsed.fatal:
                batch.status = OpenAIBatchStatus.FAILED
                batch.failed_at = now
                batch.errors = [
                    {"code": error.code, "line": error.line or None, "message": error.message, "param": error.param}
                    for error in parsed.fatal
                ]
                OpenAIBatchRepository(session).add(batch)
            else:
                message_ids = self._start(session, batch, parsed, batch_policy or self.profiles.default_policy, now)
        self.publish(message_ids)
        if not parsed.fatal and not parsed.lines:
            self.finalize_if_due(batch.id)  # nothing to run: every line went to the error file
        return self.get_batch(tenant_id, ids.batch_id(batch.id))

    def _start(
        self, session: Session, batch: OpenAIBatch, parsed: ParsedFile, policy: str, now: datetime
    ) -> list[uuid.UUID]:
        """The native batch, one request per valid line and its first hop, in this transaction."""
        native = BatchRepository(session).create(
            tenant_id=batch.tenant_id,
            policy=policy,
            name=f"openai {ids.batch_id(batch.id)}",
            meta={"openai_batch_id": ids.batch_id(batch.id)},
            rejected=[error.as_record() for error in parsed.rejected],
        )
        BatchRepository(session).set_accepted(native.id, len(parsed.lines))
        batch.batch_id = native.id
        batch.status = OpenAIBatchStatus.IN_PROGRESS
        batch.in_progress_at = now
        batch.request_total = parsed.total
        OpenAIBatchRepository(session).add(batch)
        requests, outbox = RequestRepository(session), OutboxRepository(session)
        message_ids: list[uuid.UUID] = []
        for start in range(0, len(parsed.lines), INSERT_CHUNK):
            rows: list[dict[str, Any]] = []
            messages: list[tuple[str, dict[str, Any], str]] = []
            for offset, line in enumerate(parsed.lines[start : start + INSERT_CHUNK]):
                request_id = uuid.uuid4()
                # created_at one microsecond apart: the results walk (created_at, id) in line order.
                created = now + timedelta(microseconds=start + offset)
                rows.append(
                    {
                        "id": request_id,
                        "tenant_id": batch.tenant_id,
                        "batch_id": native.id,
                        "custom_id": line.custom_id,
                        "input": line.input,
                        "policy": line.profile.policy,
                        "meta": _request_meta(line.profile, line.metadata, line=line.line),
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                messages.append(
                    (TaskName.PLAN_STEP, {"request_id": str(request_id), "seq": 0}, plan_task_id(request_id, 0))
                )
            requests.add_many(rows)
            message_ids += outbox.add_many(messages)
        return message_ids

    def _openai_batch(self, session: Session, tenant_id: uuid.UUID, public_id: str) -> OpenAIBatch:
        key = ids.parse(public_id, ids.BATCH_PREFIX)
        batch = OpenAIBatchRepository(session).get(key, tenant_id) if key is not None else None
        if batch is None:
            raise OpenAIError(status.HTTP_404_NOT_FOUND, f"no batch {public_id!r}", param="batch_id")
        return batch

    def get_batch(self, tenant_id: uuid.UUID, public_id: str) -> BatchObject:
        with session_scope(self.sessions) as session:
            batch = self._openai_batch(session, tenant_id, public_id)
        if batch.status in OPEN_OPENAI_BATCH_STATUSES:
            self.finalize_if_due(batch.id)
        with session_scope(self.sessions) as session:
            batch = self._openai_batch(session, tenant_id, public_id)
            return self._batch_object(session, batch)

    def list_batches(self, tenant_id: uuid.UUID, *, after: str | None, limit: int) -> tuple[list[BatchObject], bool]:
        with session_scope(self.sessions) as session:
            cursor = self._openai_batch(session, tenant_id, after) if after is not None else None
            page = OpenAIBatchRepository(session).page(tenant_id, after=cursor, limit=limit + 1)
        for batch in page[:limit]:
            if batch.status in OPEN_OPENAI_BATCH_STATUSES:
                self.finalize_if_due(batch.id)
        with session_scope(self.sessions) as session:
            repository = OpenAIBatchRepository(session)
            shown = []
            for batch in page[:limit]:
                current = repository.get(batch.id, tenant_id)
                if current is not None:
                    shown.append(self._batch_object(session, current))
            return shown, len(page) > limit

    def cancel_batch(self, tenant_id: uuid.UUID, public_id: str) -> BatchObject:
        with session_scope(self.sessions) as session:
            batch = self._openai_batch(session, tenant_id, public_id)
            if batch.status in DONE_STATUSES - {OpenAIBatchStatus.CANCELLED}:
                raise OpenAIError(
                    status.HTTP_409_CONFLICT,
                    f"batch {public_id!r} has already {batch.status.value.replace('_', ' ')}; "
                    "only a validating or in-progress batch can be cancelled",
                    code="batch_not_cancellable",
                    headers=NO_RETRY,
                )
            moved = OpenAIBatchRepository(session).transition(
                batch.id,
                (OpenAIBatchStatus.VALIDATING, OpenAIBatchStatus.IN_PROGRESS),
                {"status": OpenAIBatchStatus.CANCELLING, "cancelling_at": utcnow()},
            )
            if moved and batch.batch_id is not None:
                BatchRepository(session).cancel(batch.batch_id)
            OpenAIBatchRepository(session).refresh(batch)
            return self._batch_object(session, batch)

    def finalize_if_due(self, batch_key: uuid.UUID) -> bool:
        """Write the output and error files and set the final status if the batch is done
        (every request finished, or its window passed); True if this call finalized it."""
        with session_scope(self.sessions) as session:
            batches = OpenAIBatchRepository(session)
            batch = session.get(OpenAIBatch, batch_key)
            if batch is None or batch.status not in (OpenAIBatchStatus.IN_PROGRESS, OpenAIBatchStatus.CANCELLING):
                return False
            now = utcnow()
            native_id = batch.batch_id
            progress = BatchRepository(session).progress(native_id) if native_id is not None else None
            active = sum(progress.counts.get(s, 0) for s in ACTIVE_REQUEST_STATUSES) if progress else 0
            final = (
                OpenAIBatchStatus.CANCELLED
                if batch.status is OpenAIBatchStatus.CANCELLING
                else OpenAIBatchStatus.COMPLETED
            )
            expired = (
                batch.status is OpenAIBatchStatus.IN_PROGRESS
                and batch.expires_at is not None
                and now >= batch.expires_at
            )
            if active and not expired:
                return False
            if not batches.transition(
                batch.id, (batch.status,), {"status": OpenAIBatchStatus.FINALIZING, "finalizing_at": now}
            ):
                return False  # another reader is finalizing it
            if expired and native_id is not None:
                final = OpenAIBatchStatus.EXPIRED
                _expire_requests(session, native_id)
            values = self._write_results(session, batch, native_id, now)
            values["status"] = final
            values[{"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[final.value]] = (
                now
            )
            batches.transition(batch.id, (OpenAIBatchStatus.FINALIZING,), values)
            return True

    def _write_results(
        self, session: Session, batch: OpenAIBatch, native_id: uuid.UUID | None, now: datetime
    ) -> dict[str, Any]:
        outputs: list[str] = []
        errors: list[str] = []
        native = BatchRepository(session).get(native_id) if native_id is not None else None
        for record in native.rejected if native is not None else []:
            errors.append(json.dumps(rejected_line(record, batch.id), ensure_ascii=False))
        succeeded = 0
        if native_id is not None:
            for page in OpenAIBatchRepository(session).iter_requests(native_id, FINALIZE_PAGE):
                done = [request.id for request in page if request.status is RequestStatus.SUCCEEDED]
                subtasks = _grouped(SubtaskRepository(session).list_for_requests(done))
                calls = _grouped(ModelCallRepository(session).list_for_requests(done))
                for request in page:
                    if request.status is RequestStatus.SUCCEEDED:
                        succeeded += 1
                        line = output_line(request, subtasks.get(request.id, []), calls.get(request.id, []))
                        outputs.append(json.dumps(line, ensure_ascii=False))
                    else:
                        code = "batch_expired" if request.error == EXPIRED_REASON else None
                        errors.append(json.dumps(failure_line(request, code=code), ensure_ascii=False))
        expires = now + timedelta(seconds=batch.output_expires_s or self.settings.openai.file_expiry_s)
        files = OpenAIFileRepository(session)
        values: dict[str, Any] = {
            "request_completed": succeeded,
            "request_failed": batch.request_total - succeeded,
        }
        public = ids.batch_id(batch.id)
        if outputs:
            content = ("\n".join(outputs) + "\n").encode()
            values["output_file_id"] = files.create(
                tenant_id=batch.tenant_id,
                filename=f"{public}_output.jsonl",
                purpose="batch_output",
                content=content,
                expires_at=expires,
            ).id
        if errors:
            content = ("\n".join(errors) + "\n").encode()
            values["error_file_id"] = files.create(
                tenant_id=batch.tenant_id,
                filename=f"{public}_error.jsonl",
                purpose="batch_output",
                content=content,
                expires_at=expires,
            ).id
        tokens_in, tokens_out = OpenAIBatchRepository(session).usage(native_id) if native_id is not None else (0, 0)
        values["usage"] = {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        return values

    def _batch_object(self, session: Session, batch: OpenAIBatch) -> BatchObject:
        if batch.status in DONE_STATUSES:
            counts = RequestCounts(
                total=batch.request_total, completed=batch.request_completed, failed=batch.request_failed
            )
            usage = batch.usage
        else:
            progress = BatchRepository(session).progress(batch.batch_id) if batch.batch_id is not None else None
            completed = progress.counts.get(RequestStatus.SUCCEEDED, 0) if progress else 0
            running = sum(progress.counts.get(s, 0) for s in ACTIVE_REQUEST_STATUSES) if progress else 0
            counts = RequestCounts(
                total=batch.request_total, completed=completed, failed=batch.request_total - completed - running
            )
            tokens_in, tokens_out = OpenAIBatchRepository(session).usage(batch.batch_id) if batch.batch_id else (0, 0)
            usage = {"input_tokens": tokens_in, "output_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
        return BatchObject(
            id=ids.batch_id(batch.id),
            endpoint=batch.endpoint,
            input_file_id=ids.file_id(batch.input_file_id),
            completion_window=batch.completion_window,
            status=batch.status.value,
            created_at=int(batch.created_at.timestamp()),
            output_file_id=ids.file_id(batch.output_file_id) if batch.output_file_id else None,
            error_file_id=ids.file_id(batch.error_file_id) if batch.error_file_id else None,
            errors=BatchErrors(data=[BatchErrorItem(**error) for error in batch.errors]) if batch.errors else None,
            in_progress_at=unix(batch.in_progress_at),
            finalizing_at=unix(batch.finalizing_at),
            completed_at=unix(batch.completed_at),
            failed_at=unix(batch.failed_at),
            expired_at=unix(batch.expired_at),
            expires_at=unix(batch.expires_at),
            cancelling_at=unix(batch.cancelling_at),
            cancelled_at=unix(batch.cancelled_at),
            request_counts=counts,
            metadata={str(k): str(v) for k, v in batch.meta.items()} if batch.meta is not None else None,
            model=batch.model,
            usage=BatchUsage(**usage) if usage else None,
            hera_batch_id=str(batch.batch_id) if batch.batch_id else None,
        )

    # -- chat -------------------------------------------------------------------------------

    def submit_chat(self, tenant_id: uuid.UUID, body: ChatCompletionCreate) -> tuple[uuid.UUID, Profile]:
        """Queue the agent request for a chat completion; its id and profile."""
        for name, value in (("model", body.model), ("metadata", body.metadata), ("user", body.user)):
            if value is not None and (problem := value_problem(value, name)) is not None:
                raise OpenAIError(status.HTTP_400_BAD_REQUEST, problem, param=name)
        try:
            text = render_messages(body.messages)
        except MessagesError as exc:
            raise OpenAIError(status.HTTP_400_BAD_REQUEST, str(exc), param=exc.param) from None
        if len(text) > self.limits.max_input_chars:
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST,
                f"`messages` add up to {len(text):,} characters, more than the limit of "
                f"{self.limits.max_input_chars:,} (HERA_API__MAX_INPUT_CHARS)",
                param="messages",
            )
        policy = (body.metadata or {}).get("policy")
        if policy is not None and not isinstance(policy, str):
            raise OpenAIError(
                status.HTTP_400_BAD_REQUEST, "`metadata.policy` must be a string", param="metadata.policy"
            )
        try:
            profile = self.profiles.resolve(body.model, policy)
        except ValueError as exc:
            raise OpenAIError(status.HTTP_400_BAD_REQUEST, str(exc), param="metadata.policy") from None
        with session_scope(self.sessions) as session:
            _check_budget(session, self.settings, tenant_id)
            request = RequestRepository(session).add(
                tenant_id=tenant_id, input=text, policy=profile.policy, meta=_request_meta(profile, body.metadata)
            )
            message_id = self.dispatcher.enqueue(
                session, TaskName.PLAN_STEP, {"request_id": str(request.id), "seq": 0}, plan_task_id(request.id, 0)
            )
        self.publish([message_id])
        return request.id, profile

    def chat_progress(self, request_id: uuid.UUID) -> ChatProgress:
        with session_scope(self.sessions) as session:
            request = RequestRepository(session).get(request_id)
            assert request is not None, "a submitted request is never deleted while its client waits"
            return ChatProgress(
                request,
                SubtaskRepository(session).list_for_request(request_id),
                ModelCallRepository(session).list_for_request(request_id),
            )


def _check_budget(session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
    """Refuse work while the tenant is at a budget: 429 ``insufficient_quota``, what OpenAI's own
    API answers when an account is out of credit, so OpenAI clients recognise it."""
    tenant = session.get(Tenant, tenant_id)
    crossed = breach(session, settings, tenant) if tenant is not None else None
    if crossed is not None:
        raise OpenAIError(
            status.HTTP_429_TOO_MANY_REQUESTS, f"not accepted: {crossed.message}", code="insufficient_quota"
        )


def _request_meta(profile: Profile, metadata: dict[str, Any] | None, *, line: int | None = None) -> dict[str, Any]:
    openai: dict[str, Any] = {"model": profile.requested, "profile": profile.model}
    if line is not None:
        openai["line"] = line
    if metadata:
        openai["metadata"] = metadata
    return {"openai": openai}


def _expire_requests(session: Session, native_id: uuid.UUID) -> None:
    requests = RequestRepository(session)
    for request in requests.list_for_batch(native_id):
        if request.status in ACTIVE_REQUEST_STATUSES:
            requests.cancel(request.id, EXPIRED_REASON)


def _grouped(rows: Sequence[_Row]) -> dict[uuid.UUID, list[_Row]]:
    grouped: dict[uuid.UUID, list[_Row]] = {}
    for row in rows:
        grouped.setdefault(row.request_id, []).append(row)
    return grouped
