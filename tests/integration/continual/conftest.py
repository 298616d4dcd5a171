"""Continual fine-tuning against real Postgres: a tiny bootstrap on the default simulated world, and
drifted traffic (another simulator preset) turned into shadow trees.

The bootstrap (a small profile, DP trained and promoted) is built once per session in its own
database; tests that change the registry restore the bootstrap version as the active one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import EstimatorVersionRepository, RequestRepository, TenantRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.training.profiling import create_run, profile_run, run_config, simulated_items
from hera_router.training.shadow import shadow_request
from hera_router.training.trainers import train_estimator
from tests.conftest import fresh_postgres_database

FAMILY = "lookup"
BOOTSTRAP_REQUESTS = 40
DRIFT_PRESET = "weak-slm"
"""The bootstrap profiles the ``default`` preset; live traffic comes from a weaker edge model."""

ESTIMATORS: dict[str, Any] = {
    "profile_family": FAMILY,
    "profile_requests": BOOTSTRAP_REQUESTS,
    "node_budget": 32,
    "validation_fraction": 0.3,
    "encoder_min_steps": 60,
}
CONTINUAL: dict[str, Any] = {
    "min_labels": 40,
    "update_epochs": 2,
    "update_min_steps": 40,
    "heartbeat_interval_s": 0.5,
    "shadow_daily_cost_cap_usd": 1000.0,
}


def continual_settings(
    data_dir: Path,
    database_url: str,
    *,
    preset: str = "default",
    estimators: dict[str, Any] | None = None,
    **continual: Any,
) -> Settings:
    return load_settings(
        data_dir=data_dir,
        database_url=database_url,
        estimators={**ESTIMATORS, **(estimators or {})},
        simulator={"preset": preset},
        continual={**CONTINUAL, **continual},
    )


@dataclass
class Bootstrapped:
    data_dir: Path
    database_url: str
    dp_version: int
    profile_run: uuid.UUID

    def settings(self, *, preset: str = DRIFT_PRESET, **overrides: Any) -> Settings:
        return continual_settings(self.data_dir, self.database_url, preset=preset, **overrides)

    def runtime(self, *, preset: str = DRIFT_PRESET, **overrides: Any) -> Runtime:
        return Runtime(self.settings(preset=preset, **overrides))


@pytest.fixture(scope="session")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrapped]:
    data_dir = tmp_path_factory.mktemp("continual")
    with fresh_postgres_database("hera_continual") as url:
        upgrade(url)
        runtime = Runtime(continual_settings(data_dir, url))
        run_id = create_run(runtime.sessions, "bootstrap", "sim", run_config(runtime.settings))
        profile_run(runtime.settings, runtime.sessions, run_id)
        trained = train_estimator(runtime, "dp", run_id)
        assert trained is not None
        with session_scope(runtime.sessions) as session:
            EstimatorVersionRepository(session).promote("dp", trained.version)
        runtime.close()
        yield Bootstrapped(data_dir, url, trained.version, run_id)


def active_version(runtime: Runtime, name: str = "dp") -> int | None:
    with session_scope(runtime.sessions) as session:
        row = EstimatorVersionRepository(session).active(name)
        return row.version if row is not None else None


def restore_bootstrap(runtime: Runtime, bootstrapped: Bootstrapped) -> None:
    with session_scope(runtime.sessions) as session:
        EstimatorVersionRepository(session).promote("dp", bootstrapped.dp_version)


_offset = [BOOTSTRAP_REQUESTS]


def live_requests(runtime: Runtime, n: int, *, tenant: str = "continual") -> list[uuid.UUID]:
    """``n`` finished-looking live requests (drifted world items nobody has used yet)."""
    items = simulated_items(runtime.settings, FAMILY, n, offset=_offset[0])
    _offset[0] += n
    with session_scope(runtime.sessions) as session:
        tenants = TenantRepository(session)
        owner = tenants.by_name(tenant) or tenants.create(tenant)
        return [
            RequestRepository(session)
            .add(
                tenant_id=owner.id,
                input=item.request,
                policy="all-llm",
                gold_answer=item.gold,
                meta={"metric": item.metric},
            )
            .id
            for item in items
        ]


def shadow_traffic(runtime: Runtime, n: int) -> list[uuid.UUID]:
    """Shadow trees for ``n`` new drifted requests, built in process (the task's service call)."""
    ids = live_requests(runtime, n)
    for request_id in ids:
        assert shadow_request(runtime, request_id).status == "succeeded"
    return ids
