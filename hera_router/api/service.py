"""Submitting and cancelling agent requests: the write side of the producer.

Shared by the HTTP routes and the CLI (``submit``, ``run``), so nothing here imports FastAPI.
Each submission is one transaction: the request rows, their first router hop in the outbox, and
(for a batch) the batch row with its rejected lines. Only after the commit are the outbox rows
handed to ``publish``; if that fails the relay publishes them later, so a submission that
returned is never lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.errors import (
    BatchRejectedError,
    BudgetExceededError,
    InvalidRequestError,
    NotCancellableError,
    NotFoundError,
    Rejection,
)
from hera_router.api.schemas import AgentRequestItem
from hera_router.api.validation import ParsedBatch, SubmissionLimits, parse_items, parse_jsonl
from hera_router.config import Settings
from hera_router.db.enums import RequestStatus
from hera_router.db.models import Batch, Request, Tenant
from hera_router.db.repositories import BatchRepository, RequestRepository
from hera_router.db.session import session_scope
from hera_router.pipeline.budgets import breach
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.pipeline.outbox import Dispatcher

Publish = Callable[[Sequence[uuid.UUID]], object]
"""Hands committed outbox row ids to the broker (synchronously, or in the background)."""

CANCELLED_BY_CLIENT = "cancelled by the client"
SHOWN_REJECTIONS = 10
"""Rejected lines quoted in the error sentence of an all-bad batch; all are in ``rejected``."""


class BatchSubmission(NamedTuple):
    """A created batch and the lines that did not become requests (unpacks as ``batch, rejected``)."""

    batch: Batch
    rejected: list[Rejection]


class SubmissionService:
    """Create requests and batches for a tenant, and cancel them."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        dispatcher: Dispatcher,
        *,
        publish: Publish | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.limits = SubmissionLimits.from_settings(settings)
        # Default: publish inline (the CLI waits for its work anyway); the API passes a background one.
        self._publish: Publish = publish if publish is not None else dispatcher.publish

    def submit_request(self, tenant_id: uuid.UUID, item: AgentRequestItem) -> Request:
        """Queue one request. Raises :class:`InvalidRequestError` if a limit or the policy says no."""
        problem = self.limits.item_problem(item)
        if problem is not None:
            raise InvalidRequestError(problem)
        with session_scope(self.sessions) as session:
            self._check_budget(session, tenant_id)
            request, message_id = self._add(session, tenant_id, item, policy=item.policy or self.limits.default_policy)
        self._publish([message_id])
        return request

    def submit_batch(
        self,
        tenant_id: uuid.UUID,
        source: bytes | str | Sequence[object],
        *,
        policy: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> BatchSubmission:
        """Queue a batch from JSONL (``bytes``/``str``) or a list of decoded JSON entries.

        Good lines become requests, bad ones are returned (and stored on the batch) as
        :class:`Rejection`\\ s. ``policy`` applies to items that name none. Raises
        :class:`TooLargeError` for more than ``max_batch_requests`` lines, and
        :class:`BatchRejectedError` (creating nothing) when no line is acceptable.
        """
        if policy is not None and (problem := self.limits.policy_problem(policy)) is not None:
            raise InvalidRequestError(problem)
        parsed = (
            parse_jsonl(source, self.limits) if isinstance(source, bytes | str) else parse_items(source, self.limits)
        )
        if not parsed.accepted:
            raise BatchRejectedError(_nothing_accepted(parsed, source), parsed.rejected)
        batch_policy = policy or self.limits.default_policy
        message_ids: list[uuid.UUID] = []
        with session_scope(self.sessions) as session:
            self._check_budget(session, tenant_id)
            batches = BatchRepository(session)
            batch = batches.create(
                tenant_id=tenant_id,
                policy=batch_policy,
                name=name,
                meta=metadata,
                rejected=[rejection.as_record() for rejection in parsed.rejected],
            )
            for _, item in parsed.accepted:
                _, message_id = self._add(
                    session, tenant_id, item, policy=item.policy or batch_policy, batch_id=batch.id
                )
                message_ids.append(message_id)
            batches.set_accepted(batch.id, len(parsed.accepted))
            session.refresh(batch)
        self._publish(message_ids)
        return BatchSubmission(batch, parsed.rejected)

    def cancel_request(self, tenant_id: uuid.UUID, request_id: uuid.UUID) -> Request:
        """Cancel a queued or running request; cancelling a cancelled one again is a no-op.

        Raises :class:`NotFoundError` (unknown or another tenant's) or :class:`NotCancellableError`
        (already succeeded or failed).
        """
        with session_scope(self.sessions) as session:
            requests = RequestRepository(session)
            request = requests.get_for_tenant(request_id, tenant_id)
            if request is None:
                raise NotFoundError(f"no agent request {request_id}")
            if requests.cancel(request_id, CANCELLED_BY_CLIENT):
                session.refresh(request)
            elif request.status is not RequestStatus.CANCELLED:
                raise NotCancellableError(
                    f"agent request {request_id} has already {request.status.value}; "
                    "only queued or running requests can be cancelled"
                )
            return request

    def cancel_batch(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> tuple[Batch, int]:
        """Cancel the batch's queued and running requests; returns the batch and how many this
        call cancelled (0 when repeated). Finished requests keep their results."""
        with session_scope(self.sessions) as session:
            batches = BatchRepository(session)
            batch = batches.get(batch_id, tenant_id)
            if batch is None:
                raise NotFoundError(f"no agent batch {batch_id}")
            cancelled = batches.cancel(batch_id)
            session.refresh(batch)
            return batch, cancelled

    def _check_budget(self, session: Session, tenant_id: uuid.UUID) -> None:
        """Refuse a submission while the tenant is at or over a budget (402, naming it)."""
        tenant = session.get(Tenant, tenant_id)
        crossed = breach(session, self.settings, tenant) if tenant is not None else None
        if crossed is not None:
            raise BudgetExceededError(f"not accepted: {crossed.message}")

    def _add(
        self,
        session: Session,
        tenant_id: uuid.UUID,
        item: AgentRequestItem,
        *,
        policy: str,
        batch_id: uuid.UUID | None = None,
    ) -> tuple[Request, uuid.UUID]:
        """The request row and its first router hop, in the caller's transaction."""
        request = RequestRepository(session).add(
            tenant_id=tenant_id,
            input=item.input,
            policy=policy,
            priority=item.priority,
            batch_id=batch_id,
            custom_id=item.custom_id,
            meta=item.metadata,
            gold_answer=item.gold_answer,
            cost_cap_usd=item.cost_cap_usd,
            latency_budget_s=item.latency_budget_s,
        )
        message_id = self.dispatcher.enqueue(
            session, TaskName.PLAN_STEP, {"request_id": str(request.id), "seq": 0}, plan_task_id(request.id, 0)
        )
        return request, message_id


def _nothing_accepted(parsed: ParsedBatch, source: bytes | str | Sequence[object]) -> str:
    container = "file" if isinstance(source, bytes | str) else "list"
    if not parsed.rejected:
        return f"the {container} holds no requests; send at least one object with an `input` field"
    count = len(parsed.rejected)
    shown = "; ".join(rejection.message for rejection in parsed.rejected[:SHOWN_REJECTIONS])
    more = f"; and {count - SHOWN_REJECTIONS} more (see `rejected`)" if count > SHOWN_REJECTIONS else ""
    return f"none of the {count} requests in the {container} could be accepted: {shown}{more}"
