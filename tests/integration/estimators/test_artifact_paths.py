"""A router started in another directory than ``bootstrap`` finds the estimators, and the
estimator source sets the process's torch threads when it loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import EstimatorVersionRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.estimators import REQUIRED_ESTIMATORS
from hera_router.estimators.artifacts import new_staging_dir, publish, stored_path, write_meta
from hera_router.estimators.loader import RegistryEstimatorSource


class FakeComponent:
    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version


def _register(runtime: Runtime, name: str, stored: Any) -> None:
    """Publish a fake version and store its path as ``stored(final folder)`` says."""
    staging = new_staging_dir(runtime.settings.artifacts, name)
    write_meta(staging, {"variant": "fake"})
    with session_scope(runtime.sessions) as session:
        repository = EstimatorVersionRepository(session)
        row = repository.add_candidate(name, "", backbone="fake", metrics={"metric": "x", "x": 1.0, "baseline_x": 0.0})
        row.path = stored(publish(staging, runtime.settings.artifacts, name, row.version))
        repository.promote(name, row.version)


def _loaded_from(runtime: Runtime) -> dict[str, Path]:
    seen: dict[str, Path] = {}

    def loader(name: str, path: Path, version: str, settings: Any) -> FakeComponent:
        assert (path / "estimator.json").is_file(), f"{name}: {path} does not exist from {Path.cwd()}"
        seen[name] = path
        return FakeComponent(name, version)

    assert RegistryEstimatorSource(runtime, loader=loader)() is not None
    return seen


@pytest.mark.parametrize("layout", ["data-dir-relative", "legacy-cwd-relative"])
def test_a_worker_in_another_directory_loads_what_bootstrap_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)
    # bootstrap as `make demo` runs it: HERA_DATA_DIR unset, so the data dir is ".hera" under the cwd.
    settings = load_settings(data_dir=Path(".hera"))
    upgrade(settings.database_url)
    boot = Runtime(settings)

    def stored(folder: Path) -> str:
        # What trainers store now, or what they stored before: relative to where bootstrap ran.
        return stored_path(folder, settings.data_dir) if layout == "data-dir-relative" else str(folder)

    for name in REQUIRED_ESTIMATORS:
        _register(boot, name, stored)
    with session_scope(boot.sessions) as session:
        paths = {row.name: row.path for row in EstimatorVersionRepository(session).all_active()}
    boot.close()
    if layout == "data-dir-relative":
        assert paths["dp"] == "artifacts/estimators/dp/v1"
    else:
        assert paths["dp"] == ".hera/artifacts/estimators/dp/v1"

    # A worker started elsewhere, pointed at the same data dir.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    worker = Runtime(load_settings(data_dir=site / ".hera"))
    try:
        seen = _loaded_from(worker)
    finally:
        worker.close()
    assert set(seen) == set(REQUIRED_ESTIMATORS)
    assert seen["dp"].resolve() == (site / ".hera/artifacts/estimators/dp/v1").resolve()


def test_the_source_sets_the_torch_threads_of_its_process(tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    settings = load_settings(data_dir=tmp_path)
    settings = settings.model_copy(update={"estimators": settings.estimators.model_copy(update={"torch_threads": 1})})
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    try:
        torch.set_num_threads(2)
        source = RegistryEstimatorSource(runtime, loader=lambda *args: None)
        assert source.torch_threads is None  # constructing it loads and sets nothing
        assert source() is None  # nothing registered yet
        assert torch.get_num_threads() == 1
        assert source.torch_threads == 1
    finally:
        torch.set_num_threads(before)
        runtime.close()
