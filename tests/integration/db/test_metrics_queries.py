"""The repository queries behind the scrape-time metrics (metrics/state.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from hera_router.db.enums import RequestStatus, RunStatus
from hera_router.db.models import Tenant
from hera_router.db.repositories import RequestRepository, TrainingRunRepository

NIGHT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_oldest_queued_at_ignores_requests_that_started(session: Session, tenant: Tenant) -> None:
    requests = RequestRepository(session)
    assert requests.oldest_queued_at() is None
    first = requests.add(tenant_id=tenant.id, input="a", policy="all-llm")
    second = requests.add(tenant_id=tenant.id, input="b", policy="all-llm")
    session.flush()
    oldest = requests.oldest_queued_at()
    assert oldest is not None
    assert oldest.replace(tzinfo=oldest.tzinfo or UTC) == min(first.created_at, second.created_at)

    requests.transition(first.id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
    requests.transition(second.id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
    assert requests.oldest_queued_at() is None


def test_training_status_summary_per_model_and_status(session: Session) -> None:
    runs = TrainingRunRepository(session)
    assert runs.status_summary() == []
    for night, status in ((NIGHT, RunStatus.SUCCEEDED), (NIGHT + timedelta(days=1), RunStatus.FAILED)):
        run = runs.start_run("dp", night)
        assert run is not None
        runs.finish(run.id, status, error="boom" if status is RunStatus.FAILED else None)
    pending = runs.start_run("sd", NIGHT + timedelta(days=1))
    assert pending is not None

    summary = {(s.model_name, s.status): s for s in runs.status_summary()}
    assert set(summary) == {("dp", RunStatus.SUCCEEDED), ("dp", RunStatus.FAILED), ("sd", RunStatus.RUNNING)}
    assert all(s.runs == 1 for s in summary.values())
    # A run that has not finished is dated by its schedule.
    latest = summary[("sd", RunStatus.RUNNING)].latest_at
    assert latest.replace(tzinfo=latest.tzinfo or UTC) == NIGHT + timedelta(days=1)
