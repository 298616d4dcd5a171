"""What the operator does to any tenant's requests and batches: show a request, cancel a request
or a batch (``hera-router request show|cancel``, ``hera-router batch cancel``, ``/v1/admin``).

These reuse the tenant-facing views and cancellation (``RequestViews``, ``SubmissionService``)
on the tenant that owns the object, so an operator's cancel is the same state change as the
tenant's own, recorded with the same reason.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from hera_router.api.errors import NotFoundError
from hera_router.api.schemas import RequestDetail
from hera_router.api.service import SubmissionService
from hera_router.api.views import RequestViews
from hera_router.db.models import Batch, Request
from hera_router.db.session import session_scope


def request_owner(sessions: sessionmaker[Session], request_id: uuid.UUID) -> uuid.UUID:
    """The tenant of the request; :class:`NotFoundError` if there is none."""
    with session_scope(sessions) as session:
        request = session.get(Request, request_id)
        if request is None:
            raise NotFoundError(f"no agent request {request_id}")
        return request.tenant_id


def batch_owner(sessions: sessionmaker[Session], batch_id: uuid.UUID) -> uuid.UUID:
    """The tenant of the native batch; :class:`NotFoundError` if there is none."""
    with session_scope(sessions) as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFoundError(f"no agent batch {batch_id}")
        return batch.tenant_id


def show_request(views: RequestViews, sessions: sessionmaker[Session], request_id: uuid.UUID) -> RequestDetail:
    """The request with its steps, decisions and calls, whichever tenant it belongs to."""
    detail = views.request_detail(request_owner(sessions, request_id), request_id)
    if detail is None:  # deleted between the two reads
        raise NotFoundError(f"no agent request {request_id}")
    return detail


def cancel_request(service: SubmissionService, request_id: uuid.UUID) -> Request:
    """Cancel a queued or running request (:class:`NotCancellableError` once it finished)."""
    return service.cancel_request(request_owner(service.sessions, request_id), request_id)


def cancel_batch(service: SubmissionService, batch_id: uuid.UUID) -> tuple[Batch, int]:
    """Cancel the batch's unfinished requests; returns the batch and how many this call cancelled."""
    return service.cancel_batch(batch_owner(service.sessions, batch_id), batch_id)
