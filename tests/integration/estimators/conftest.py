"""A tiny simulated profile in a throw-away SQLite database, shared by the estimator tests.

The converted SmolLM2 checkpoint comes from the same pytest-cache artifact folder the backend
tests use (converted once, ~30 s, then loaded in ~2 s); trained estimator versions go to a fresh
folder per session.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.training.labels import RequestTree, request_trees
from hera_router.training.profiling import create_run, load_trees, profile_run, run_config
from hera_router.workers.runtime import Runtime

TINY = {
    "profile_family": "lookup",
    "profile_requests": 80,
    "node_budget": 40,
    "validation_fraction": 0.3,
    "encoder_min_steps": 150,
    "generator_max_examples": 48,
    "generator_epochs": 3,
    "generator_learning_rate": 2e-3,
    "generator_max_new_tokens": 20,
    "slow_validation_examples": 16,
}


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return cache.mkdir("hera-artifacts") if cache is not None else tmp_path_factory.mktemp("artifacts")


def tiny_settings(data_dir: Path, generator: str = "smollm2-135m-instruct", database_url: str = "") -> Settings:
    return load_settings(data_dir=data_dir, database_url=database_url, estimators={**TINY, "generator": generator})


@pytest.fixture(scope="session")
def smollm2_checkpoint(model_cache: Path) -> Path:
    from hera_router.backends.local import ensure_smollm2_checkpoint

    return ensure_smollm2_checkpoint(model_cache)


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    settings = tiny_settings(tmp_path_factory.mktemp("estimators"))
    upgrade(settings.database_url)
    return Runtime(settings)


@pytest.fixture(scope="session")
def tiny_run(runtime: Runtime) -> uuid.UUID:
    run_id = create_run(runtime.sessions, "tiny", "sim", run_config(runtime.settings))
    profile_run(runtime.settings, runtime.sessions, run_id)
    return run_id


@pytest.fixture(scope="session")
def tiny_trees(runtime: Runtime, tiny_run: uuid.UUID) -> list[RequestTree]:
    return request_trees(load_trees(runtime.sessions, tiny_run))
