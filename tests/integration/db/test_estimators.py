"""Estimator versions: numbering, promotion, and at most one active version per name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hera_router.db.enums import EstimatorStatus
from hera_router.db.models import EstimatorVersion
from hera_router.db.repositories import EstimatorVersionRepository
from tests.integration.db.roundtrip import assert_round_trip


def test_candidates_are_numbered_and_round_trip(session: Session) -> None:
    estimators = EstimatorVersionRepository(session)
    first = estimators.add_candidate(
        "dp",
        "artifacts/dp/1",
        metrics={"auc": 0.81},
        data_window_start=datetime(2026, 11, 1, tzinfo=UTC),
        data_window_end=datetime(2026, 11, 26, tzinfo=UTC),
    )
    second = estimators.add_candidate("dp", "artifacts/dp/2")
    other = estimators.add_candidate("sd", "artifacts/sd/1")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    loaded = assert_round_trip(session, first)
    assert loaded.status is EstimatorStatus.CANDIDATE
    assert estimators.active("dp") is None


def test_promote_keeps_exactly_one_active(session: Session) -> None:
    estimators = EstimatorVersionRepository(session)
    for version in (1, 2, 3):
        estimators.add_candidate("dp", f"artifacts/dp/{version}")
    estimators.add_candidate("sd", "artifacts/sd/1")
    estimators.promote("sd", 1)

    estimators.promote("dp", 1)
    estimators.promote("dp", 3)
    estimators.promote("dp", 3)  # promoting the active version again changes nothing
    session.expire_all()
    statuses = {v.version: v.status for v in estimators.list_versions("dp")}
    assert statuses == {1: EstimatorStatus.RETIRED, 2: EstimatorStatus.CANDIDATE, 3: EstimatorStatus.ACTIVE}
    active = estimators.active("dp")
    assert active is not None
    assert active.version == 3
    assert active.promoted_at is not None
    assert active.promoted_at.tzinfo is not None

    estimators.promote("dp", 1)  # roll back to a retired version
    session.expire_all()
    active = estimators.active("dp")
    assert active is not None
    assert active.version == 1
    sd_active = estimators.active("sd")
    assert sd_active is not None
    assert sd_active.version == 1


def test_promote_unknown_version_says_so(session: Session) -> None:
    with pytest.raises(LookupError, match="no version 7"):
        EstimatorVersionRepository(session).promote("dp", 7)


def test_database_refuses_a_second_active_version(session: Session) -> None:
    """The partial unique index holds even for writes that bypass ``promote``."""
    estimators = EstimatorVersionRepository(session)
    estimators.add_candidate("dp", "a")
    second = estimators.add_candidate("dp", "b")
    estimators.promote("dp", 1)
    savepoint = session.begin_nested()
    second.status = EstimatorStatus.ACTIVE
    with pytest.raises(IntegrityError):
        session.flush()
    savepoint.rollback()
    # A retired or candidate duplicate is fine: the index only covers active rows.
    session.add(EstimatorVersion(name="dp", version=3, path="c", status=EstimatorStatus.RETIRED))
    session.flush()
