"""Setting up a simulated world for a study: its settings and work folder, the bootstrap (reused
when the folder already finished one with the same configuration), the profile runs, the fitted
baselines, and where progress is reported.

A *world* is a simulator preset and a world seed. Its folder holds a SQLite database, the
artifacts and ``state.json``, which remembers which runs finished, so a second run of any study on
the same folder reuses them and only replays.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime
    from hera_router.routing.oracle import OracleResult
    from hera_router.training.baselines import HybridFit
    from hera_router.training.replay import ProfileSet

Log = Callable[[str], None]


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """Where a study reports what it is doing: stage lines and counted work. Silent by default."""

    def log(self, message: str) -> None:
        """A finished stage."""

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Counted work: the yielded function takes the number done so far."""
        yield lambda _done: None


class RichProgress(Progress):
    """Stage lines on the console and a rich progress bar per counted task (the CLI's)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    def log(self, message: str) -> None:
        self.console.print(f"[dim]{datetime.now(UTC).strftime('%H:%M:%S')}[/] {message}", highlight=False)

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda done: bar.update(task, completed=done)


def every_tenth(label: str, log: Log) -> Callable[[int, int], None]:
    """A profiling callback that logs about ten lines per run (so a long profile is not silent)."""

    def report(done: int, total: int) -> None:
        if total and (done == total or done % max(1, total // 10) == 0):
            log(f"profiling {label}: {done}/{total} requests")

    return report


# -- the work folder -----------------------------------------------------------------------------


def load_state(folder: Path) -> dict[str, Any]:
    """What the folder's earlier runs finished (empty for a new folder)."""
    path = folder / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")


@dataclass(frozen=True)
class WorldTraining:
    """How a world's estimators are bootstrapped: profiling ``train_n`` requests of ``train_family``."""

    train_family: str = "lookup"
    train_n: int = 120
    node_budget: int = 64
    retrain: bool = False
    """Bootstrap again even when the folder already has a bootstrap of this configuration."""
    recalibrate: bool = False
    """Reusing a world's bootstrap: fit its calibration again (what ``hera-router promote`` does)."""


def world_settings(base: Settings, folder: Path, preset: str, seed: int, training: WorldTraining) -> Settings:
    """``base`` with its own database and artifacts in ``folder``, the world's preset and seed, and
    bootstrap profiling the training family."""
    from hera_router.config import load_settings

    dumped = base.model_dump(exclude={"database_url", "data_dir", "artifact_dir"})
    estimators = {
        **dumped.get("estimators", {}),
        "profile_family": training.train_family,
        "profile_requests": training.train_n,
        "node_budget": training.node_budget,
    }
    simulator = {**dumped.get("simulator", {}), "preset": preset, "seed": seed}
    database = f"sqlite:///{folder / 'eval.sqlite3'}"
    return load_settings(
        **{**dumped, "data_dir": folder, "database_url": database, "estimators": estimators, "simulator": simulator}
    )


# -- runs a world reuses -------------------------------------------------------------------------


def bootstrapped(runtime: Runtime, state: dict[str, Any], training: WorldTraining, progress: Progress) -> uuid.UUID:
    """The training profile run, bootstrapping (profile, train, calibrate, promote) unless the work
    folder already did it with the same profile configuration."""
    from hera_router.training.bootstrap import bootstrap, bootstrap_config

    wanted = bootstrap_config(runtime.settings)
    previous = state.get("bootstrap")
    if previous and previous.get("config") == wanted and not training.retrain and _usable(runtime, previous):
        run_id = uuid.UUID(previous["run_id"])
        progress.log(f"reusing the bootstrap (training profile {run_id}, active estimators)")
        if training.recalibrate:
            recalibrate(runtime, run_id, progress)
        return run_id
    started = time.perf_counter()
    label = f"bootstrap: profiling {training.train_n} {training.train_family} requests"
    with progress.task(label, training.train_n) as tick:
        result = bootstrap(
            runtime,
            name="matrix-train",
            on_request=lambda done, _total: tick(done),
            progress=lambda message: progress.log(f"  bootstrap: {message}"),
        )
    trained = ", ".join(f"{t.name} v{t.version}" for t in result.trained)
    progress.log(f"bootstrapped in {time.perf_counter() - started:.0f} s: {result.requests} requests; {trained}")
    state["bootstrap"] = {"run_id": str(result.run_id), "config": wanted}
    return result.run_id


def _usable(runtime: Runtime, previous: dict[str, Any]) -> bool:
    """Whether a recorded bootstrap's profile finished and every estimator it trained is active."""
    from hera_router.db.enums import RunStatus
    from hera_router.db.repositories import EstimatorVersionRepository, ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES

    with session_scope(runtime.sessions) as session:
        run = ProfilingRepository(session).get_run(uuid.UUID(previous["run_id"]))
        active = {row.name for row in EstimatorVersionRepository(session).all_active()}
    return run is not None and run.status is RunStatus.SUCCEEDED and set(ESTIMATOR_NAMES) <= active


def recalibrate(runtime: Runtime, run_id: uuid.UUID, progress: Progress) -> None:
    """Fit the world's calibration again on its bootstrap's own search profile."""
    from sqlalchemy import select

    from hera_router.db.models import ProfileRun
    from hera_router.db.session import session_scope
    from hera_router.training.calibration import calibrate

    with session_scope(runtime.sessions) as session:
        search = session.scalars(select(ProfileRun.id).where(ProfileRun.name == "matrix-train-calibration")).first()
    started = time.perf_counter()
    calibrate(runtime, run_id, search_run=search, progress=lambda message: progress.log(f"  {message}"))
    progress.log(f"recalibrated in {time.perf_counter() - started:.0f} s")


@dataclass(frozen=True)
class ProfileSpec:
    """One profile run of a world: ``n`` requests of ``family`` from ``offset`` (instance i of a
    family is the same request in every set, so an offset keeps two sets disjoint)."""

    label: str
    family: str
    n: int
    offset: int
    node_budget: int


def profiled(
    runtime: Runtime,
    state: dict[str, Any],
    spec: ProfileSpec,
    log: Log,
    on_request: Callable[[int, int], None] | None = None,
) -> uuid.UUID:
    """The profile run of ``spec``: reused when the work folder already finished it."""
    from hera_router.db.enums import RunStatus
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.training.profiling import create_run, profile_run, run_config

    settings = runtime.settings
    config = run_config(settings, family=spec.family, n=spec.n, offset=spec.offset, node_budget=spec.node_budget)
    previous = state.get(spec.label)
    if previous and previous.get("config") == config:
        with session_scope(runtime.sessions) as session:
            run = ProfilingRepository(session).get_run(uuid.UUID(previous["run_id"]))
            done = run is not None and run.status is RunStatus.SUCCEEDED
        if done:
            log(f"reusing {spec.label} profile run {previous['run_id']}")
            return uuid.UUID(previous["run_id"])
    run_id = create_run(runtime.sessions, f"eval-{spec.label}", "sim", config)
    started = time.perf_counter()
    profile_run(settings, runtime.sessions, run_id, on_request=on_request or every_tenth(spec.label, log))
    seconds = time.perf_counter() - started
    log(f"profiled {spec.label}: {spec.n} {spec.family} requests (offset {spec.offset}) in {seconds:.0f} s")
    state[spec.label] = {"run_id": str(run_id), "config": config}
    return run_id


def without_training_requests(profile: ProfileSet, train_profile: ProfileSet, log: Log) -> ProfileSet:
    """``profile`` less the requests that are also in ``train_profile``."""
    seen = {t.request for t in train_profile.trees}
    overlap = [t.key for t in profile.trees if t.request in seen]
    if not overlap:
        return profile
    log(f"leaving out {len(overlap)} evaluation requests that also appear in the training profile")
    return profile.subset([t.key for t in profile.trees if t.request not in seen])


@dataclass(frozen=True)
class Baselines:
    """The fitted baselines of a world and the settings that load them."""

    settings: Settings
    hybrid: HybridFit
    oracle: OracleResult


def fit_baselines(
    settings: Settings, train_profile: ProfileSet, profile: ProfileSet, folder: Path, log: Log
) -> Baselines:
    """HybridLLM fitted on the training profile and the Oracle plan searched on the evaluation
    profile, both saved in ``folder``; ``settings`` pointed at them."""
    from hera_router.training.baselines import BaselinePaths, fit_hybridllm, fit_oracle, with_baseline_paths

    paths = BaselinePaths(folder / "hybridllm.json", folder / "oracle-plan.json")
    hybrid = fit_hybridllm(train_profile, paths.hybridllm)
    oracle = fit_oracle(profile, paths.oracle)
    log(
        f"hybridllm threshold {hybrid.router.threshold:.3f} ({hybrid.train_samples} subtasks); oracle "
        f"{100 * oracle.accuracy:.1f} % at SLM {100 * oracle.slm_usage:.1f} %"
    )
    routing = with_baseline_paths(settings.routing, paths)
    return Baselines(settings.model_copy(update={"routing": routing}), hybrid, oracle)
