"""The repository queries the producer API added: tenant-scoped get, keyset pages, cancel."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hera_router.db.enums import RequestStatus
from hera_router.db.models import Tenant
from hera_router.db.repositories import BatchRepository, RequestRepository, TenantRepository


def test_get_for_tenant_hides_other_tenants_requests(session: Session, tenant: Tenant) -> None:
    requests = RequestRepository(session)
    mine = requests.add(tenant_id=tenant.id, input="mine", policy="all-llm")
    other = TenantRepository(session).create("other")

    assert requests.get_for_tenant(mine.id, tenant.id) is mine
    assert requests.get_for_tenant(mine.id, other.id) is None


def test_page_for_batch_walks_every_request_once_in_submission_order(session: Session, tenant: Tenant) -> None:
    requests = RequestRepository(session)
    batch = BatchRepository(session).create(tenant_id=tenant.id, policy="all-llm")
    added = [requests.add(tenant_id=tenant.id, input=f"q{i}", policy="all-llm", batch_id=batch.id) for i in range(5)]
    requests.add(tenant_id=tenant.id, input="not in the batch", policy="all-llm")

    seen = []
    after = None
    while True:
        page = requests.page_for_batch(batch.id, after=after, limit=2)
        seen.extend(page)
        if len(page) < 2:
            break
        after = (page[-1].created_at, page[-1].id)

    assert [r.id for r in seen] == [r.id for r in added]
    assert requests.page_for_batch(batch.id, limit=10) == seen


def test_cancel_only_moves_active_requests(session: Session, tenant: Tenant) -> None:
    requests = RequestRepository(session)
    queued = requests.add(tenant_id=tenant.id, input="q", policy="all-llm")
    done = requests.add(tenant_id=tenant.id, input="d", policy="all-llm")
    requests.transition(done.id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
    requests.succeed(done.id, "answer")

    assert requests.cancel(queued.id, "cancelled by the client") is True
    assert requests.cancel(queued.id, "again") is False
    assert requests.cancel(done.id, "too late") is False
    session.expire_all()
    cancelled, finished = requests.get(queued.id), requests.get(done.id)
    assert cancelled is not None
    assert finished is not None
    assert (cancelled.status, cancelled.error) == (RequestStatus.CANCELLED, "cancelled by the client")
    assert (finished.status, finished.final_answer) == (RequestStatus.SUCCEEDED, "answer")
