"""Training runs: one per (model, scheduled time), however often the nightly task fires."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from hera_router.db.enums import RunStatus
from hera_router.db.repositories import TrainingRunRepository
from tests.integration.db.roundtrip import assert_round_trip

NIGHT = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_start_run_is_unique_per_schedule(session: Session) -> None:
    runs = TrainingRunRepository(session)
    run = runs.start_run("dp", NIGHT)
    assert run is not None
    loaded = assert_round_trip(session, run)
    assert loaded.status is RunStatus.RUNNING
    assert loaded.scheduled_for == NIGHT
    assert loaded.started_at is not None

    assert runs.start_run("dp", NIGHT) is None  # second beat / redelivered task
    assert runs.start_run("sd", NIGHT) is not None  # another model, same night
    following = runs.start_run("dp", NIGHT + timedelta(days=1))
    assert following is not None
    latest = runs.latest("dp")
    assert latest is not None
    assert latest.id == following.id


def test_heartbeat_and_finish(session: Session) -> None:
    runs = TrainingRunRepository(session)
    run = runs.start_run("dp", NIGHT)
    assert run is not None
    assert runs.heartbeat(run.id) is True
    assert runs.finish(run.id, RunStatus.SUCCEEDED, metrics={"auc": 0.84}) is True
    assert runs.finish(run.id, RunStatus.FAILED, error="late") is False
    assert runs.heartbeat(run.id) is False
    assert runs.heartbeat(uuid.uuid4()) is False
    session.expire_all()
    done = runs.get(run.id)
    assert done is not None
    assert (done.status, done.metrics, done.error) == (RunStatus.SUCCEEDED, {"auc": 0.84}, None)
    assert done.finished_at is not None
    assert done.finished_at.tzinfo is not None


def test_finish_needs_a_final_status(session: Session) -> None:
    runs = TrainingRunRepository(session)
    run = runs.start_run("dp", NIGHT)
    assert run is not None
    with pytest.raises(ValueError, match="final status"):
        runs.finish(run.id, RunStatus.RUNNING)
