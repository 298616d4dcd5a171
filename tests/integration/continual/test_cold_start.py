"""Cold start learns from shadow traffic on Postgres: every stored shadow tree refits HERA's
cold-start threshold, the registry entry ``cold_start`` holds it, routers read it through
``ColdStartSource``, and the mode shows in `hera-router estimators` and on the metrics. Once
trained estimators are active the mode is ``trained`` and shadow trees no longer refit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from typer.testing import CliRunner

from hera_router.cli import app
from hera_router.config import Settings, load_settings
from hera_router.db.enums import EstimatorStatus
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import EstimatorVersionRepository, RequestRepository, TenantRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.estimators import REQUIRED_ESTIMATORS
from hera_router.metrics.state import StateCollector
from hera_router.routing.coldstart import REGISTRY_NAME, THRESHOLD_GRID
from hera_router.training.coldstart import ColdStartSource, mode, refit
from hera_router.training.profiling import simulated_items
from hera_router.training.shadow import shadow_request
from tests.conftest import fresh_postgres_database

pytestmark = [pytest.mark.postgres]

MIN_REQUESTS = 6


def cold_settings(data_dir: Path, url: str) -> Settings:
    return load_settings(
        data_dir=data_dir,
        database_url=url,
        routing={"cold_start_min_requests": MIN_REQUESTS, "cold_start_threshold": -0.1},
        continual={"shadow_daily_cost_cap_usd": 1000.0, "shadow_node_budget": 32},
        ops={"system_metrics": True},
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with fresh_postgres_database("hera_coldstart") as url:
        upgrade(url)
        runtime = Runtime(cold_settings(tmp_path, url))
        try:
            yield runtime
        finally:
            runtime.close()


def finished_requests(runtime: Runtime, n: int, offset: int) -> list[uuid.UUID]:
    items = simulated_items(runtime.settings, "mixed", n, offset=offset)
    with session_scope(runtime.sessions) as session:
        tenants = TenantRepository(session)
        owner = tenants.by_name("cold") or tenants.create("cold")
        return [
            RequestRepository(session)
            .add(
                tenant_id=owner.id,
                input=item.request,
                policy="hera",
                gold_answer=item.gold,
                meta={"metric": item.metric},
            )
            .id
            for item in items
        ]


def cold_rows(runtime: Runtime) -> list[tuple[int, EstimatorStatus, dict[str, object]]]:
    with session_scope(runtime.sessions) as session:
        return [
            (row.version, row.status, dict(row.metrics))
            for row in EstimatorVersionRepository(session).list_versions(REGISTRY_NAME)
        ]


def gauge(metrics: list[Metric], name: str) -> dict[tuple[str, ...], float]:
    family = next(m for m in metrics if m.name == name)
    return {tuple(sample.labels.values()): sample.value for sample in family.samples}


def test_shadow_trees_refit_the_threshold_that_routers_and_the_cli_then_show(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ColdStartSource(runtime, reload_interval_s=0.0)
    assert source().threshold == -0.1
    assert not source().learned

    # Below the minimum: a row that records the count, the default still in force.
    for request_id in finished_requests(runtime, MIN_REQUESTS - 1, offset=0):
        assert shadow_request(runtime, request_id).status == "succeeded"
    [(_, status, metrics)] = cold_rows(runtime)
    assert status is EstimatorStatus.ACTIVE
    # Too few gold answers for accuracy: scored by agreement, on the trees that hold an All-LLM answer.
    assert metrics["fitted"] is False
    assert metrics["requests"] == MIN_REQUESTS - 1
    assert metrics["objective"] == "agreement"
    assert int(str(metrics["samples"])) <= MIN_REQUESTS - 1
    assert metrics["threshold"] == -0.1
    assert not source().learned

    # At the minimum: fitted on accuracy (the requests carry gold answers), over the whole grid.
    for request_id in finished_requests(runtime, 6, offset=100):
        assert shadow_request(runtime, request_id).status == "succeeded"
    rows = cold_rows(runtime)
    active = [r for r in rows if r[1] is EstimatorStatus.ACTIVE]
    assert len(active) == 1
    version, _, metrics = active[0]
    assert metrics["fitted"] is True
    assert metrics["objective"] == "accuracy"
    assert metrics["samples"] == MIN_REQUESTS - 1 + 6
    points = metrics["points"]
    assert isinstance(points, list)
    assert {p["threshold"] for p in points} >= set(THRESHOLD_GRID)
    learned = source()
    assert learned.learned
    assert learned.version == str(version)
    assert learned.threshold == metrics["threshold"]
    assert learned.samples == metrics["samples"]

    # Refitting on the same trees keeps the version and only brings the counts up to date.
    assert refit(runtime) is not None
    assert [r[0] for r in cold_rows(runtime)] == [r[0] for r in rows]

    current, cold = mode(runtime)
    assert current == "cold-start"
    assert cold == learned
    collector = StateCollector(runtime.settings)
    try:
        scraped = list(collector.collect())
    finally:
        collector.close()
    assert gauge(scraped, "hera_routing_mode") == {("hera", "cold-start"): 1.0, ("hera", "trained"): 0.0}
    assert gauge(scraped, "hera_cold_start_threshold") == {(): learned.threshold}
    assert gauge(scraped, "hera_cold_start_shadow_requests") == {(): float(learned.samples)}

    monkeypatch.setenv("HERA_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("HERA_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("HERA_ROUTING__COLD_START_MIN_REQUESTS", str(MIN_REQUESTS))
    monkeypatch.setenv("COLUMNS", "300")
    shown = CliRunner().invoke(app, ["estimators"])
    assert shown.exit_code == 0, shown.output
    assert "mode: cold-start" in shown.output
    assert f"threshold {learned.threshold:.3f} learned from {learned.samples} shadowed requests" in shown.output


def test_with_trained_estimators_the_mode_is_trained_and_shadow_trees_do_not_refit(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        registry = EstimatorVersionRepository(session)
        for name in REQUIRED_ESTIMATORS:
            registry.promote(name, registry.add_candidate(name, f"artifacts/{name}/v1").version)
    [request_id] = finished_requests(runtime, 1, offset=200)
    assert shadow_request(runtime, request_id).status == "succeeded"
    assert cold_rows(runtime) == []
    assert refit(runtime) is None
    assert mode(runtime) == ("trained", None)
    collector = StateCollector(runtime.settings)
    try:
        scraped = list(collector.collect())
    finally:
        collector.close()
    assert gauge(scraped, "hera_routing_mode") == {("hera", "cold-start"): 0.0, ("hera", "trained"): 1.0}
    assert not any(m.name == "hera_cold_start_threshold" for m in scraped)
