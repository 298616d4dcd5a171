"""Cold start in a distributed deployment with no estimators at all: `hera-router worker`
processes (router, edge, cloud, training) on Redis and Postgres, simulated models behind loopback
servers. ``hera`` requests succeed from the first one in cold-start mode; the training worker
shadows them and refits the cold-start threshold; the same router process (no restart) then
records the learned threshold's version on the decisions of the requests that follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hera_router.db.enums import RequestStatus
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import DecisionRepository, EstimatorVersionRepository
from hera_router.db.session import session_scope
from hera_router.routing.coldstart import BRANCH, REGISTRY_NAME
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL, fresh_postgres_database
from tests.integration.pipeline.distributed import distributed_system, wait_for
from tests.integration.pipeline.helpers import submit, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(900)]

SEED = 7
MIN_REQUESTS = 4


def test_cold_start_routes_learns_from_shadow_traffic_and_the_router_picks_it_up(tmp_path: Path) -> None:
    overrides = {
        "HERA_CONTINUAL__SHADOW_RATE": "1",
        "HERA_CONTINUAL__SHADOW_DAILY_COST_CAP_USD": "1000",
        "HERA_ESTIMATORS__RELOAD_INTERVAL_S": "1",
        "HERA_ROUTING__COLD_START_MIN_REQUESTS": str(MIN_REQUESTS),
    }
    with fresh_postgres_database("hera_coldstart_dist") as url:
        upgrade(url)
        with distributed_system(
            url, REDIS_URL, tmp_path, seed=SEED, overrides=overrides, start=("router", "edge", "cloud")
        ) as system:
            trainer = system.start_worker("training", pool="prefork", concurrency=1)
            runtime = system.app.hera_runtime
            dispatcher = celery_dispatcher(system.app)
            tasks = generate("mixed", MIN_REQUESTS + 3, SEED)
            first = submit(runtime.sessions, dispatcher, tasks[:MIN_REQUESTS], "hera")
            rows = wait_until_finished(runtime.read_sessions, first, timeout_s=300)
            assert all(r.status is RequestStatus.SUCCEEDED for r in rows.values()), [r.error for r in rows.values()]
            with session_scope(runtime.sessions) as session:
                decisions = [d for i in first for d in DecisionRepository(session).list_for_request(i)]
            assert decisions
            assert all(d.scores["cold_start"] == 1.0 and d.branch in (BRANCH, "verify") for d in decisions)
            assert all(d.estimator_versions == {} for d in decisions)  # the default: nothing learned yet

            def stored() -> dict[str, Any] | None:
                with session_scope(runtime.sessions) as session:
                    row = EstimatorVersionRepository(session).active(REGISTRY_NAME)
                    return None if row is None else {"version": row.version, **row.metrics}

            def fitted_on_all() -> bool:
                row = stored()
                return row is not None and bool(row["fitted"]) and row["requests"] == MIN_REQUESTS

            wait_for(fitted_on_all, 300, "the training worker never fitted the cold-start threshold on every tree")
            # No more refits while the next requests route: stop the trainer (warm shutdown).
            trainer.process.terminate()
            trainer.process.wait(timeout=60)
            system.workers.pop("training")
            row = stored()
            assert row is not None
            version, threshold, samples = row["version"], float(row["threshold"]), int(row["samples"])
            assert samples == MIN_REQUESTS  # every request carried a gold answer: scored by accuracy
            assert row["objective"] == "accuracy"

            later = submit(runtime.sessions, dispatcher, tasks[MIN_REQUESTS:], "hera")
            rows = wait_until_finished(runtime.read_sessions, later, timeout_s=300)
            assert all(r.status is RequestStatus.SUCCEEDED for r in rows.values())
            with session_scope(runtime.sessions) as session:
                decisions = [d for i in later for d in DecisionRepository(session).list_for_request(i)]
            assert decisions
            for decision in decisions:
                assert decision.estimator_versions == {REGISTRY_NAME: str(version)}
                assert decision.scores["cold_start_threshold"] == threshold
                assert decision.scores["cold_start_samples"] == samples
                assert decision.scores["verify_threshold"] == threshold
