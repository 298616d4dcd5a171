"""Registry: promote, roll back, and a running router's estimator source following the active version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hera_router.config import load_settings
from hera_router.db.enums import EstimatorStatus
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import EstimatorVersionRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.estimators import ESTIMATOR_NAMES, REQUIRED_ESTIMATORS
from hera_router.estimators.artifacts import new_staging_dir, publish, version_dir, write_meta
from hera_router.estimators.loader import RegistryEstimatorSource


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeComponent:
    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    """A registry of its own: these tests number versions from 1 and publish fake artefacts, which
    must never land on the session's trained estimators (tests/integration/conftest.py)."""
    settings = load_settings(data_dir=tmp_path)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def register(runtime: Runtime, name: str, *, promote: bool) -> int:
    staging = new_staging_dir(runtime.settings.artifacts, name)
    write_meta(staging, {"variant": "fake"})
    with session_scope(runtime.sessions) as session:
        repository = EstimatorVersionRepository(session)
        row = repository.add_candidate(name, "", backbone="fake", metrics={"metric": "x", "x": 1.0, "baseline_x": 0.0})
        row.path = str(publish(staging, runtime.settings.artifacts, name, row.version))
        if promote:
            repository.promote(name, row.version)
        return row.version


def promote(runtime: Runtime, name: str, version: int) -> None:
    with session_scope(runtime.sessions) as session:
        EstimatorVersionRepository(session).promote(name, version)


def test_artifacts_are_published_atomically_into_version_folders(registry: Runtime) -> None:
    version = register(registry, "dp", promote=False)
    folder = version_dir(registry.settings.artifacts, "dp", version)
    assert (folder / "estimator.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".staging-")]


def test_the_source_follows_promotions_and_rollbacks_after_its_interval(registry: Runtime) -> None:
    loads: list[tuple[str, str]] = []

    def loader(name: str, path: Path, version: str, settings: Any) -> FakeComponent:
        loads.append((name, version))
        return FakeComponent(name, version)

    clock = Clock()
    source = RegistryEstimatorSource(registry, reload_interval_s=30.0, clock=clock, loader=loader)
    for name in REQUIRED_ESTIMATORS[:-1]:
        register(registry, name, promote=True)
    assert source() is None  # SD not active yet: the HERA policy must not run half-equipped

    register(registry, "sd", promote=True)
    assert source() is None  # the "none" answer is cached until the interval passes
    clock.now = 31.0
    first = source()
    assert first is not None
    assert dict(first.versions) == dict.fromkeys(REQUIRED_ESTIMATORS, "1")
    assert first.divergence is None  # optional: HERA then compares the SP cosine, without verify

    second = register(registry, "dp", promote=True)
    clock.now = 40.0
    assert source() is first  # still within the interval: no database read, no reload
    clock.now = 62.0
    updated = source()
    assert updated is not None
    assert updated.dp.version == str(second) == "2"
    assert updated.urc is first.urc  # unchanged versions are not reloaded
    assert loads.count(("urc", "1")) == 1

    promote(registry, "dp", 1)  # roll back
    clock.now = 100.0
    rolled_back = source()
    assert rolled_back is not None
    assert rolled_back.dp.version == "1"
    with session_scope(registry.sessions) as session:
        statuses = {v.version: v.status for v in EstimatorVersionRepository(session).list_versions("dp")}
    assert statuses == {1: EstimatorStatus.ACTIVE, 2: EstimatorStatus.RETIRED}


def test_a_version_that_cannot_load_leaves_the_previous_bundle_routing(registry: Runtime) -> None:
    broken: set[tuple[str, str]] = set()

    def loader(name: str, path: Path, version: str, settings: Any) -> FakeComponent:
        if (name, version) in broken:
            raise KeyError("backbone")
        return FakeComponent(name, version)

    clock = Clock()
    source = RegistryEstimatorSource(registry, reload_interval_s=30.0, clock=clock, loader=loader)
    broken.add(("urc", "1"))
    for name in ESTIMATOR_NAMES:
        register(registry, name, promote=True)
    assert source() is None  # nothing loadable yet, and no exception for the routing task
    assert source.load_error == "KeyError: 'backbone'"
    broken.clear()
    clock.now = 31.0
    first = source()
    assert first is not None
    assert source.load_error is None

    broken.add(("dp", "2"))
    register(registry, "dp", promote=True)
    clock.now = 62.0
    assert source() is first  # the broken v2 is not served; v1 keeps routing
    assert source.load_error == "KeyError: 'backbone'"


def test_the_router_pipeline_uses_the_registry_source(registry: Runtime) -> None:
    from hera_router.workers import create_app

    app = create_app(registry.settings)
    app.hera_runtime = registry
    assert isinstance(app.pipeline.estimator_source, RegistryEstimatorSource)
    assert app.pipeline.estimator_source() is None  # nothing active: baselines still route
