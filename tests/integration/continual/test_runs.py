"""Continual fine-tuning's bookkeeping on real Postgres, without training: shadow runs, slots, the
lock, skipped and abandoned runs, the admin route. No model is trained here (the registry holds a
placeholder active DP), so these run in seconds; ``test_retrain.py`` trains for real."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hera_router.db.base import utcnow
from hera_router.db.enums import RunStatus
from hera_router.db.locks import try_advisory_lock
from hera_router.db.migrate import upgrade
from hera_router.db.models import TrainingRun
from hera_router.db.repositories import (
    EstimatorVersionRepository,
    RequestRepository,
    ShadowRunRepository,
    TrainingRunRepository,
)
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.training.continual import ABANDONED, RetrainOutcome, last_slot, lock_name, reap_abandoned_runs, retrain
from hera_router.training.shadow import sampled, shadow_request
from tests.conftest import fresh_postgres_database
from tests.integration.continual.conftest import DRIFT_PRESET, continual_settings, live_requests

pytestmark = pytest.mark.postgres

_slot = [datetime(2031, 1, 1, 2, 0, tzinfo=UTC)]


def next_slot() -> datetime:
    _slot[0] += timedelta(days=1)
    return _slot[0]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    data_dir = tmp_path_factory.mktemp("continual-runs")
    with fresh_postgres_database("hera_continual_runs") as url:
        upgrade(url)
        runtime = Runtime(continual_settings(data_dir, url))
        with session_scope(runtime.sessions) as session:
            versions = EstimatorVersionRepository(session)
            row = versions.add_candidate("dp", str(data_dir / "nowhere"), data_window_end=utcnow())
            versions.promote("dp", row.version)
        runtime.close()
        yield data_dir, url


def runtime_for(database: tuple[Path, str], **continual: object) -> Runtime:
    return Runtime(continual_settings(*database, preset=DRIFT_PRESET, **continual))


def run_row(runtime: Runtime, slot: datetime) -> TrainingRun | None:
    with session_scope(runtime.sessions) as session:
        row = TrainingRunRepository(session).by_schedule("dp", slot)
        if row is not None:
            session.expunge(row)
        return row


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    ids = [uuid.UUID(int=i * 7919) for i in range(4000)]
    chosen = [i for i in ids if sampled(i, 0.1)]
    assert 300 < len(chosen) < 500
    assert chosen == [i for i in ids if sampled(i, 0.1)]
    assert not any(sampled(i, 0.0) for i in ids[:100])
    assert all(sampled(i, 1.0) for i in ids[:100])


def test_last_slot_is_the_latest_firing_of_the_schedule() -> None:
    assert last_slot("0 2 * * *", datetime(2030, 1, 5, 2, 0, 31, tzinfo=UTC)) == datetime(2030, 1, 5, 2, 0, tzinfo=UTC)
    assert last_slot("0 2 * * *", datetime(2030, 1, 5, 1, 59, tzinfo=UTC)) == datetime(2030, 1, 4, 2, 0, tzinfo=UTC)
    # Mondays at 03:30 (cron weekday 1); 2030-01-05 is a Saturday
    monday = datetime(2029, 12, 31, 3, 30, tzinfo=UTC)
    assert last_slot("30 3 * * 1", datetime(2030, 1, 5, 12, 0, tzinfo=UTC)) == monday


def test_a_shadow_run_is_paid_once_recorded_apart_from_the_request_and_capped(database: tuple[Path, str]) -> None:
    runtime = runtime_for(database)
    [first, second] = live_requests(runtime, 2, tenant="shadow-tests")
    done = shadow_request(runtime, first)
    assert done.status == "succeeded"
    assert done.cost_usd > 0  # the simulated LLM has a price
    assert done.nodes >= 4
    assert shadow_request(runtime, first).status == "claimed"  # a redelivery pays nothing more
    with session_scope(runtime.sessions) as session:
        request = RequestRepository(session).get(first)
        assert request is not None
        assert request.cost_usd == 0  # shadow cost is not the user's
        row = ShadowRunRepository(session).by_request(first)
        assert row is not None
        assert row.cost_usd == pytest.approx(done.cost_usd)
        assert row.status is RunStatus.SUCCEEDED
    runtime.close()

    capped = runtime_for(database, shadow_daily_cost_cap_usd=done.cost_usd / 2)
    skipped = shadow_request(capped, second)
    assert skipped.status == "skipped"
    assert skipped.reason is not None
    assert "daily shadow cost cap reached" in skipped.reason
    with session_scope(capped.sessions) as session:
        row = ShadowRunRepository(session).by_request(second)
        assert row is not None
        assert row.status is RunStatus.SKIPPED
        assert row.cost_usd == 0
    capped.close()


def test_too_few_labels_make_a_skipped_run_with_the_count(database: tuple[Path, str]) -> None:
    runtime = runtime_for(database, min_labels=100_000)
    slot = next_slot()
    [outcome] = retrain(runtime, slot=slot, names=["dp"])
    assert outcome.status == "skipped"
    assert outcome.reason is not None
    assert "at least 100000 are needed" in outcome.reason
    row = run_row(runtime, slot)
    assert row is not None
    assert row.status is RunStatus.SKIPPED
    assert row.error == outcome.reason
    assert row.metrics["reason"] == outcome.reason
    runtime.close()


def test_two_triggers_for_one_slot_make_one_run_and_the_lock_skips_a_concurrent_slot(
    database: tuple[Path, str],
) -> None:
    runtime = runtime_for(database, min_labels=100_000)
    slot = next_slot()
    outcomes: list[RetrainOutcome] = []
    start = threading.Barrier(2)

    def trigger() -> None:
        start.wait()
        outcomes.extend(retrain(runtime, slot=slot, names=["dp"], trigger="beat"))

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(o.status for o in outcomes) == ["claimed", "skipped"]
    with session_scope(runtime.sessions) as session:
        assert [r.scheduled_for for r in TrainingRunRepository(session).recent(50, "dp")].count(slot) == 1

    # Another slot while a trainer of dp holds the advisory lock: recorded as skipped, not run.
    other = next_slot()
    with try_advisory_lock(runtime.engine, lock_name("dp")) as held:
        assert held
        [outcome] = retrain(runtime, slot=other, names=["dp"])
    assert outcome.status == "skipped"
    assert "another retraining of dp is running" in (outcome.reason or "")
    row = run_row(runtime, other)
    assert row is not None
    assert row.status is RunStatus.SKIPPED
    runtime.close()


def test_an_abandoned_run_is_failed_only_when_nobody_holds_the_lock(database: tuple[Path, str]) -> None:
    runtime = runtime_for(database, stale_after_s=1.0)
    slot = next_slot()
    with session_scope(runtime.sessions) as session:
        claimed = TrainingRunRepository(session).start_run("dp", slot)
        assert claimed is not None
        claimed.heartbeat_at = utcnow() - timedelta(seconds=30)  # its trainer went silent
    with try_advisory_lock(runtime.engine, lock_name("dp")) as held:
        assert held  # a live trainer elsewhere: its run is not abandoned
        assert reap_abandoned_runs(runtime, ["dp"]) == []
    assert [r.status for r in [run_row(runtime, slot)] if r] == [RunStatus.RUNNING]
    assert len(reap_abandoned_runs(runtime, ["dp"])) == 1
    row = run_row(runtime, slot)
    assert row is not None
    assert row.status is RunStatus.FAILED
    assert row.error == ABANDONED
    runtime.close()


def test_the_admin_route_needs_the_admin_token_and_queues_one_slot(database: tuple[Path, str]) -> None:
    from hera_router.api.app import create_app

    data_dir, url = database
    settings = continual_settings(data_dir, url).model_copy(update={"broker_url": "memory://"})
    with TestClient(create_app(settings)) as client:
        disabled = client.post("/v1/admin/retrain")
        assert disabled.status_code == 403
        assert "HERA_API__ADMIN_TOKEN" in disabled.json()["error"]
    secret = uuid.uuid4().hex
    api = settings.api.model_copy(update={"admin_token": SecretStr(secret)})
    settings = settings.model_copy(update={"api": api})
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/admin/retrain").status_code == 401
        assert client.post("/v1/admin/retrain", headers={"Authorization": "Bearer tenant-key"}).status_code == 403
        auth = {"Authorization": f"Bearer {secret}"}
        assert client.post("/v1/admin/retrain", json={"estimators": ["sd"]}, headers=auth).status_code == 422
        queued = client.post("/v1/admin/retrain", json={"slot": "2031-06-01T02:00:00+00:00"}, headers=auth)
        assert queued.status_code == 202, queued.text
        assert queued.json()["task_id"] == "retrain:2031-06-01T02:00:00+00:00"
        assert queued.json()["estimators"] == ["dp"]
        runs = client.get("/v1/admin/training-runs?estimator=dp", headers=auth)
        assert runs.status_code == 200
        assert {run["status"] for run in runs.json()} >= {"skipped"}
