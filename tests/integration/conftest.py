"""A tiny simulated profile in a throw-away SQLite database, and estimators trained on it, shared
by the estimator, routing and continual-training tests (one instance per test session).

The converted SmolLM2 checkpoint comes from the same pytest-cache artifact folder the backend
tests use (converted once, ~30 s, then loaded in ~2 s); trained estimator versions go to a fresh
folder per session.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.training.labels import RequestTree, request_trees
from hera_router.training.profiling import create_run, load_trees, profile_run, run_config
from hera_router.training.trainers import TrainResult, train_estimator

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


URC_PROFILE = {"profile_family": "mixed", "profile_requests": 300, "node_budget": 34, "decompose": False}
"""URC learns one number per request from a noisy target: 56 requests are too few for any learner
to beat the mean reliably, so its test profiles 300 requests, only their All-SLM / All-LLM chains
(the budget leaves no room for branches), which costs seconds in the simulated world."""


def tiny_settings(
    data_dir: Path, generator: str = "smollm2-135m-instruct", database_url: str = "", **estimators: Any
) -> Settings:
    return load_settings(
        data_dir=data_dir, database_url=database_url, estimators={**TINY, "generator": generator, **estimators}
    )


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


@pytest.fixture(scope="session")
def urc_run(runtime: Runtime) -> uuid.UUID:
    """A second run in the same database: 300 mixed requests, chains only (see URC_PROFILE)."""
    settings = tiny_settings(runtime.settings.data_dir, database_url=runtime.settings.database_url, **URC_PROFILE)
    run_id = create_run(runtime.sessions, "urc", "sim", run_config(settings))
    profile_run(settings, runtime.sessions, run_id)
    return run_id


@pytest.fixture(scope="session")
def urc_trees(runtime: Runtime, urc_run: uuid.UUID) -> list[RequestTree]:
    return request_trees(load_trees(runtime.sessions, urc_run))


class TrainedEstimators:
    """Estimators trained on demand, once per session: URC on ``urc_run``, the rest on ``tiny_run``
    (default variants unless asked otherwise). Tests that only need *an* active set share them."""

    def __init__(
        self, runtime: Runtime, tiny: uuid.UUID, tiny_trees: list[RequestTree], request: pytest.FixtureRequest
    ):
        self.runtime = runtime
        self._tiny = (tiny, tiny_trees)
        self._request = request
        self._results: dict[tuple[str, str | None], TrainResult] = {}

    def get(self, name: str, variant: str | None = None) -> TrainResult:
        defaults = {
            "sp_slm": self.runtime.settings.estimators.sp_variant,
            "sd": self.runtime.settings.estimators.sd_variant,
        }
        defaults["sp_llm"] = defaults["sp_slm"]
        key = (name, variant or defaults.get(name))
        if key not in self._results:
            if name == "urc":
                run, trees = self._request.getfixturevalue("urc_run"), self._request.getfixturevalue("urc_trees")
            else:
                run, trees = self._tiny
            result = train_estimator(self.runtime, name, run, variant=key[1], trees=trees)
            assert result is not None
            self._results[key] = result
        return self._results[key]

    def default_set(self) -> dict[str, TrainResult]:
        """One version of each of the five, default variants (what a router loads)."""
        return {name: self.get(name) for name in ("urc", "sp_slm", "sp_llm", "dp", "sd")}


@pytest.fixture(scope="session")
def trained_estimators(
    request: pytest.FixtureRequest, runtime: Runtime, tiny_run: uuid.UUID, tiny_trees: list[RequestTree]
) -> TrainedEstimators:
    return TrainedEstimators(runtime, tiny_run, tiny_trees, request)
