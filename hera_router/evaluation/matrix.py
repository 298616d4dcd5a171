"""``hera-router eval matrix``: every registered policy on several simulated worlds, one table each
plus the mean, and HERA against HybridLLM and Random at HERA's own SLM share.

A *world* is a simulator preset and a world seed. Per world, in its own folder under ``--workdir``
(SQLite database, artifacts, ``state.json``; a second run reuses what finished):

1. ``training.bootstrap.bootstrap`` profiles ``--train-n`` requests of the training family and
   trains, calibrates and promotes the estimators exactly as ``hera-router bootstrap`` does for a
   user (so whatever bootstrap learns to do flows in here unchanged).
2. The HybridLLM router is fitted on that training profile and the Oracle plan searched on the
   evaluation profile (``evaluation/baselines.py``), as ``eval report`` does.
3. An evaluation profile of ``--eval-n`` requests of every family, offset past the training
   requests, so the training family's evaluation requests are new and the other family is held out.
4. Every policy the registry knows at run time is replayed on it (steps the profile lacks run on
   the simulated backends, ``replay.simulated_extension``; decomposed steps run their parts there,
   ``Replayer.run_parts``, so partial and all-or-nothing SD are both exact). Policies a replay
   cannot evaluate show as such, with the reason. The SD modes get a table of their own (SLM share
   and accuracy of ``hera``/``hera-sd-partial`` and ``hera-paper``/``hera-paper-sd-partial``).
5. Equal SLM share (issue 14's comparison): HybridLLM's threshold is swept over the quantiles of its
   scores on the evaluation subtasks and its accuracy interpolated at each HERA variant's SLM share;
   Random is replayed with p = that share. Deltas get paired bootstrap intervals (the same resampled
   requests for both sides).

Intervals are 95 % percentile bootstraps over requests (``metrics.bootstrap_ci``'s method). The mean
over worlds resamples requests within each world and averages the worlds' statistics (a stratified
bootstrap), so a world with more requests does not weigh more. Everything here is SIMULATED.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hera_router.evaluation import compare
from hera_router.evaluation.metrics import PolicyMetrics, RequestOutcome

if TYPE_CHECKING:
    from hera_router.config import RoutingSettings, Settings
    from hera_router.db.runtime import Runtime
    from hera_router.training.replay import ProfileSet, Replayer

Vector = npt.NDArray[np.float64]
LABEL = "SIMULATED"
DEFAULT_WORLDS = ("default", "strong-slm", "weak-slm", "weak-logprob")
DEFAULT_SEEDS = (0, 1)
HYBRID_GRID = 20
"""HybridLLM thresholds at this many quantiles of its scores (plus its tuned one and both ends)."""


# -- progress ------------------------------------------------------------------------------------


class MatrixProgress:
    """Where the matrix reports what it is doing: stage lines and counted work. Silent by default."""

    def log(self, message: str) -> None:
        """A finished stage."""

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Counted work: the yielded function takes the number done so far."""
        yield lambda _done: None


class RichProgress(MatrixProgress):
    """Stage lines on the console and a rich progress bar per counted task (the CLI's)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    def log(self, message: str) -> None:
        self.console.print(f"[dim]{datetime.now(UTC).strftime('%H:%M:%S')}[/] {message}", highlight=False)

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(label, total=total)
            yield lambda done: bar.update(task, completed=done)


# -- configuration and results -------------------------------------------------------------------


@dataclass
class MatrixConfig:
    out: Path
    workdir: Path
    worlds: Sequence[str] = DEFAULT_WORLDS
    seeds: Sequence[int] = DEFAULT_SEEDS
    train_family: str = "lookup"
    eval_family: str = "mixed"
    train_n: int = 120
    eval_n: int = 60
    node_budget: int = 64
    resamples: int = 1000
    policies: Sequence[str] = ()
    """Empty: every policy in the registry."""
    retrain: bool = False
    recalibrate: bool = False
    """Reusing a world's bootstrap: fit its calibration again (what ``hera-router promote`` does)."""
    command: str = ""


@dataclass
class EqualShare:
    """One HERA variant against HybridLLM (interpolated on its threshold sweep) and Random at its share."""

    policy: str
    slm_share: float
    accuracy: float
    hybrid_accuracy: float
    hybrid_in_range: bool
    """Whether the sweep reached the share on both sides (otherwise the nearest end is used)."""
    random_accuracy: float
    random_share: float
    delta_hybrid: float
    delta_hybrid_ci: tuple[float, float]
    delta_random: float
    delta_random_ci: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _clean(self.__dict__)
        return cleaned


@dataclass
class WorldResult:
    preset: str
    seed: int
    rows: list[PolicyMetrics]
    errors: dict[str, str]
    outcomes: dict[str, list[RequestOutcome]]
    all_llm_cost: dict[str, float]
    decision_ms: dict[str, float]
    hybrid_sweep: list[tuple[float, PolicyMetrics]]
    equal_share: list[EqualShare]
    families: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.preset} / seed {self.seed}"

    @property
    def slug(self) -> str:
        return f"{self.preset}-seed{self.seed}"


@dataclass
class MatrixResult:
    worlds: list[WorldResult]
    mean_rows: list[dict[str, Any]]
    mean_equal_share: list[dict[str, Any]]
    seconds: float
    out: Path


# -- one world -----------------------------------------------------------------------------------


def world_settings(base: Settings, folder: Path, preset: str, seed: int, config: MatrixConfig) -> Settings:
    """``base`` with its own database and artifacts in ``folder``, the world's preset and seed, and
    bootstrap profiling the training family."""
    from hera_router.config import load_settings

    dumped = base.model_dump(exclude={"database_url", "data_dir", "artifact_dir"})
    estimators = {
        **dumped.get("estimators", {}),
        "profile_family": config.train_family,
        "profile_requests": config.train_n,
        "node_budget": config.node_budget,
    }
    simulator = {**dumped.get("simulator", {}), "preset": preset, "seed": seed}
    return load_settings(**{
        **dumped, "data_dir": folder, "database_url": f"sqlite:///{folder / 'eval.sqlite3'}",
        "estimators": estimators, "simulator": simulator,
    })  # fmt: skip


def _bootstrapped(runtime: Runtime, state: dict[str, Any], config: MatrixConfig, progress: MatrixProgress) -> uuid.UUID:
    """The training profile run, bootstrapping (profile, train, calibrate, promote) unless the work
    folder already did it with the same profile configuration."""
    from hera_router.db.enums import RunStatus
    from hera_router.db.repositories import EstimatorVersionRepository, ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES
    from hera_router.training.bootstrap import bootstrap, bootstrap_config

    wanted = bootstrap_config(runtime.settings)
    previous = state.get("bootstrap")
    if previous and previous.get("config") == wanted and not config.retrain:
        with session_scope(runtime.sessions) as session:
            run = ProfilingRepository(session).get_run(uuid.UUID(previous["run_id"]))
            active = {row.name for row in EstimatorVersionRepository(session).all_active()}
        if run is not None and run.status is RunStatus.SUCCEEDED and set(ESTIMATOR_NAMES) <= active:
            progress.log(f"reusing the bootstrap (training profile {previous['run_id']}, active estimators)")
            if config.recalibrate:
                _recalibrate(runtime, uuid.UUID(previous["run_id"]), progress)
            return uuid.UUID(previous["run_id"])
    started = time.perf_counter()
    with progress.task(f"bootstrap: profiling {config.train_n} {config.train_family} requests", config.train_n) as tick:
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


def _recalibrate(runtime: Runtime, run_id: uuid.UUID, progress: MatrixProgress) -> None:
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


def _policy_names(config: MatrixConfig) -> list[str]:
    from hera_router.routing.registry import policy_names

    known = policy_names()
    if config.policies:
        unknown = [n for n in config.policies if n not in known]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(known)}")
        return list(config.policies)
    ordered = [n for n in dict.fromkeys((*compare.BASELINES, *compare.ABLATIONS)) if n in known]
    return ordered + [n for n in known if n not in ordered]


def run_world(
    base: Settings, preset: str, seed: int, config: MatrixConfig, progress: MatrixProgress | None = None
) -> WorldResult:
    from hera_router.db.migrate import upgrade
    from hera_router.db.runtime import Runtime
    from hera_router.estimators.loader import RegistryEstimatorSource
    from hera_router.evaluation.report import _profile, _save_state, _state
    from hera_router.training.baselines import BaselinePaths, fit_hybridllm, fit_oracle, with_baseline_paths
    from hera_router.training.replay import Replayer, load_profile, simulated_extension, simulated_latency

    progress = progress or MatrixProgress()
    folder = config.workdir / f"{preset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = world_settings(base, folder, preset, seed, config)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = _state(folder)
    started = time.perf_counter()
    try:
        train_run = _bootstrapped(runtime, state, config, progress)
        _save_state(folder, state)
        with progress.task(
            f"profiling {config.eval_n} {config.eval_family} evaluation requests", config.eval_n
        ) as tick:
            eval_run = _profile(
                runtime, state, "eval", config.eval_family, config.eval_n, config.train_n, config.node_budget,
                progress.log, on_request=lambda done, _total: tick(done),
            )  # fmt: skip
        _save_state(folder, state)
        train_profile = load_profile(settings, runtime.sessions, train_run)
        profile = load_profile(settings, runtime.sessions, eval_run)
        seen = {t.request for t in train_profile.trees}
        if any(t.request in seen for t in profile.trees):
            profile = profile.subset([t.key for t in profile.trees if t.request not in seen])
        paths = BaselinePaths(folder / "hybridllm.json", folder / "oracle-plan.json")
        hybrid = fit_hybridllm(train_profile, paths.hybridllm)
        oracle_fit = fit_oracle(profile, paths.oracle)
        progress.log(
            f"hybridllm threshold {hybrid.router.threshold:.3f} ({hybrid.train_samples} subtasks); oracle "
            f"{100 * oracle_fit.accuracy:.1f} % at SLM {100 * oracle_fit.slm_usage:.1f} %"
        )
        routing = with_baseline_paths(settings.routing, paths)
        settings = settings.model_copy(update={"routing": routing})
        runtime.settings = settings
        estimators = RegistryEstimatorSource(runtime)()
        if estimators is None:
            progress.log("no active estimators after bootstrap: HERA and its ablations will show as not evaluated")
        replayer = Replayer(
            profile, estimators, max_steps=routing.max_steps, latency=simulated_latency(settings),
            extension=simulated_extension(settings), run_parts=True,
        )  # fmt: skip
        result = _replay_world(replayer, profile, routing, folder, config, progress)
    finally:
        _save_state(folder, state)
        runtime.close()
    result.preset, result.seed = preset, seed
    result.info = {
        "train_profile": str(train_run), "eval_profile": str(eval_run), "requests": len(profile.trees),
        "estimator_versions": dict(estimators.versions) if estimators is not None else {},
        "hybridllm_threshold": hybrid.router.threshold, "oracle_accuracy": oracle_fit.accuracy,
        "oracle_slm_usage": oracle_fit.slm_usage, "extension_steps": replayer.extension.steps
        if replayer.extension is not None else 0, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    return result


def _replay_world(
    replayer: Replayer,
    profile: ProfileSet,
    routing: RoutingSettings,
    folder: Path,
    config: MatrixConfig,
    progress: MatrixProgress,
) -> WorldResult:
    from hera_router.routing.hera import VARIANTS

    names = _policy_names(config)
    # Cost is normalised by All-LLM's replayed spend on the same request (the profile's All-LLM chain,
    # which a node budget may cut short, only where All-LLM itself could not be replayed).
    all_llm = profile.all_llm_costs()
    reference = compare.evaluate(replayer, ["all-llm"], routing, all_llm, resamples=0).rows[0]
    all_llm.update({o.key: o.remote_cost_usd for o in reference.outcomes if o.counted})
    rows: list[compare.Evaluated] = []
    started = time.perf_counter()
    with progress.task(f"replaying {len(names)} policies on {len(profile.trees)} requests", len(names)) as tick:
        for done, name in enumerate(names, start=1):
            rows += compare.evaluate(replayer, [name], routing, all_llm, resamples=config.resamples).rows
            tick(done)
    progress.log(f"replayed {len(names)} policies in {time.perf_counter() - started:.0f} s")
    by_name = {row.name: row for row in rows}
    sweep = _hybrid_sweep(replayer, profile, routing, folder, all_llm, config, progress)
    equal: list[EqualShare] = []
    for name in [n for n in names if n in VARIANTS]:
        row = by_name[name]
        if row.error or not row.outcomes:
            continue
        random_row = compare.evaluate(
            replayer, ["random"], routing.model_copy(update={"random_p_slm": _finite(row.metrics.slm_usage)}),
            all_llm, resamples=config.resamples,
        ).rows[0]  # fmt: skip
        equal.append(
            equal_share(name, row.outcomes, [(t, r.outcomes) for t, r in sweep], random_row.outcomes, config.resamples)
        )
    families = sorted({t.family for t in profile.trees})
    return WorldResult(
        preset="", seed=0, rows=[r.metrics for r in rows], errors={r.name: r.error for r in rows if r.error},
        outcomes={r.name: r.outcomes for r in rows}, all_llm_cost=all_llm,
        decision_ms={r.name: decision_ms_per_step(r.outcomes) for r in rows},
        hybrid_sweep=[(t, r.metrics) for t, r in sweep], equal_share=equal, families=families,
    )  # fmt: skip


def _finite(value: float, default: float = 0.0) -> float:
    return default if math.isnan(value) else value


def _hybrid_sweep(
    replayer: Replayer,
    profile: ProfileSet,
    routing: RoutingSettings,
    folder: Path,
    all_llm: Mapping[str, float],
    config: MatrixConfig,
    progress: MatrixProgress,
) -> list[tuple[float, compare.Evaluated]]:
    """HybridLLM replayed at thresholds spanning its scores on the evaluation subtasks (all-SLM to all-LLM)."""
    from hera_router.routing.hybridllm import HybridRouter

    assert routing.hybridllm_model_path is not None
    router = HybridRouter.load(routing.hybridllm_model_path)
    scores = np.array([router.classifier.score(text, depth) for text, depth in _subtasks(profile)] or [0.5])
    grid = {float(np.min(scores)), router.threshold, math.nextafter(float(np.max(scores)), math.inf)}
    grid |= {float(q) for q in np.quantile(scores, np.linspace(0.0, 1.0, HYBRID_GRID + 1))}
    sweep_dir = folder / "hybridllm-sweep"
    sweep_dir.mkdir(exist_ok=True)
    points: list[tuple[float, compare.Evaluated]] = []
    with progress.task("HybridLLM threshold sweep", len(grid)) as tick:
        for index, threshold in enumerate(sorted(grid)):
            path = sweep_dir / f"threshold-{index:02d}.json"
            HybridRouter(router.classifier, threshold, router.relaxation).save(path)
            swept = routing.model_copy(update={"hybridllm_model_path": path})
            row = compare.evaluate(replayer, ["hybridllm"], swept, all_llm, resamples=config.resamples).rows[0]
            points.append((threshold, row))
            tick(index + 1)
    return points


def _subtasks(profile: ProfileSet) -> Iterator[tuple[str, int]]:
    for tree in profile.trees:
        stack = [tree.root]
        while stack:
            node = stack.pop()
            if not node.is_final:
                yield node.text, node.depth
            stack.extend(node.children.values())


# -- statistics ----------------------------------------------------------------------------------


def decision_ms_per_step(outcomes: Sequence[RequestOutcome]) -> float:
    """Time spent deciding over executed steps, in ms (a span's covered steps count, at 0 ms)."""
    rows = [o for o in outcomes if o.counted]
    steps = sum(o.n_steps for o in rows)
    return 1e3 * sum(o.decision_s for o in rows) / steps if steps else math.nan


@dataclass(frozen=True)
class _Columns:
    """One policy's counted requests in one world, as aligned arrays."""

    keys: list[str]
    score: Vector
    share: Vector
    cost: Vector
    reference: Vector
    steps: Vector
    decision_s: Vector

    @classmethod
    def of(cls, outcomes: Sequence[RequestOutcome], all_llm: Mapping[str, float]) -> _Columns:
        rows = sorted((o for o in outcomes if o.counted), key=lambda o: o.key)
        share = [math.nan if (s := o.slm_share) is None else s for o in rows]
        return cls(
            [o.key for o in rows], np.array([o.score for o in rows], dtype=float), np.array(share, dtype=float),
            np.array([o.remote_cost_usd if o.key in all_llm else 0.0 for o in rows], dtype=float),
            np.array([all_llm.get(o.key, 0.0) for o in rows], dtype=float),
            np.array([o.n_steps for o in rows], dtype=float), np.array([o.decision_s for o in rows], dtype=float),
        )  # fmt: skip

    def aligned(self, keys: Sequence[str]) -> _Columns:
        index = {k: i for i, k in enumerate(self.keys)}
        pick = np.array([index[k] for k in keys], dtype=int)
        return _Columns(
            list(keys), self.score[pick], self.share[pick], self.cost[pick], self.reference[pick], self.steps[pick],
            self.decision_s[pick],
        )  # fmt: skip


def _resample(n: int, resamples: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    return rng.integers(0, n, size=(resamples, n))


def _nanmean_rows(values: Vector) -> Vector:
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(values, axis=-1)  # type: ignore[no-any-return]


@contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _ratio(num: Vector, den: Vector) -> Vector:
    total = den.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio: Vector = np.where(total > 0, num.sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)
    return ratio


def _ci(samples: Vector) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if not finite.size:
        return (math.nan, math.nan)
    return (float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975)))


def _interpolate(share: float, points: Sequence[tuple[float, float]]) -> tuple[float, bool]:
    """Accuracy at ``share`` on the (SLM share, accuracy) curve, linear between the nearest points on
    either side; outside the curve's range the nearest end (and ``False``)."""
    curve = sorted((s, a) for s, a in points if math.isfinite(s) and math.isfinite(a))
    if not curve or not math.isfinite(share):
        return math.nan, False
    if share <= curve[0][0]:
        return curve[0][1], share >= curve[0][0] - 1e-9
    if share >= curve[-1][0]:
        return curve[-1][1], share <= curve[-1][0] + 1e-9
    for (s0, a0), (s1, a1) in pairwise(curve):
        if s0 <= share <= s1:
            return (a0 if s1 == s0 else a0 + (a1 - a0) * (share - s0) / (s1 - s0)), True
    return curve[-1][1], False  # pragma: no cover - the loop always finds the bracket


def equal_share(
    name: str,
    outcomes: Sequence[RequestOutcome],
    sweep: Sequence[tuple[float, Sequence[RequestOutcome]]],
    random_outcomes: Sequence[RequestOutcome],
    resamples: int = 1000,
    seed: int = 0,
) -> EqualShare:
    """HERA variant ``name`` against HybridLLM interpolated at its SLM share and Random at p = that share,
    with paired bootstrap intervals of the accuracy differences (requests all sides counted)."""
    hera = _Columns.of(outcomes, {})
    keys = set(hera.keys) & set(_Columns.of(random_outcomes, {}).keys)
    for _threshold, point in sweep:
        keys &= set(_Columns.of(point, {}).keys)
    ordered = sorted(keys)
    hera = hera.aligned(ordered)
    rand = _Columns.of(random_outcomes, {}).aligned(ordered)
    points = [_Columns.of(point, {}).aligned(ordered) for _t, point in sweep]

    def at(index: npt.NDArray[np.int64] | None) -> tuple[float, float, bool, float, float]:
        def pick(values: Vector) -> Vector:
            return values if index is None else values[index]

        share = float(np.nanmean(pick(hera.share))) if ordered else math.nan
        accuracy = float(np.mean(pick(hera.score))) if ordered else math.nan
        curve = [(float(np.nanmean(pick(p.share))), float(np.mean(pick(p.score)))) for p in points] if ordered else []
        hybrid, in_range = _interpolate(share, curve)
        random_accuracy = float(np.mean(pick(rand.score))) if ordered else math.nan
        random_share = float(np.nanmean(pick(rand.share))) if ordered else math.nan
        return accuracy, hybrid, in_range, random_accuracy, random_share

    with _quiet():
        accuracy, hybrid, in_range, random_accuracy, random_share = at(None)
        delta_h: list[float] = []
        delta_r: list[float] = []
        if ordered:
            rng = np.random.default_rng(seed)
            for index in _resample(len(ordered), resamples, rng):
                a, h, _in, r, _rs = at(index)
                delta_h.append(a - h)
                delta_r.append(a - r)
        share = float(np.nanmean(hera.share)) if ordered else math.nan
    return EqualShare(
        policy=name, slm_share=share, accuracy=accuracy, hybrid_accuracy=hybrid, hybrid_in_range=in_range,
        random_accuracy=random_accuracy, random_share=random_share, delta_hybrid=accuracy - hybrid,
        delta_hybrid_ci=_ci(np.array(delta_h)), delta_random=accuracy - random_accuracy,
        delta_random_ci=_ci(np.array(delta_r)),
    )  # fmt: skip


def mean_rows(worlds: Sequence[WorldResult], resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per policy, the mean over worlds of accuracy, SLM share, cost, steps and decision time, with
    stratified bootstrap intervals (requests resampled within each world, worlds averaged)."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(row.policy for world in worlds for row in world.rows))
    rows: list[dict[str, Any]] = []
    for name in names:
        per_world = [_Columns.of(world.outcomes.get(name, []), world.all_llm_cost) for world in worlds]
        present = [c for c in per_world if c.keys]
        if len(present) < len(worlds):
            rows.append({"policy": name, "worlds": len(present), "note": "not evaluated on every world"})
            continue
        samples: dict[str, list[Vector]] = {k: [] for k in ("accuracy", "slm_share", "cost", "steps", "decision_ms")}
        point: dict[str, list[float]] = {k: [] for k in samples}
        with _quiet():
            for columns in present:
                index = _resample(len(columns.keys), resamples, rng)
                samples["accuracy"].append(columns.score[index].mean(axis=1))
                samples["slm_share"].append(_nanmean_rows(columns.share[index]))
                samples["cost"].append(_ratio(columns.cost[index], columns.reference[index]))
                samples["steps"].append(columns.steps[index].mean(axis=1))
                samples["decision_ms"].append(1e3 * _ratio(columns.decision_s[index], columns.steps[index]))
                point["accuracy"].append(float(columns.score.mean()))
                point["slm_share"].append(float(np.nanmean(columns.share)))
                point["cost"].append(float(_ratio(columns.cost, columns.reference)))
                point["steps"].append(float(columns.steps.mean()))
                point["decision_ms"].append(float(1e3 * _ratio(columns.decision_s, columns.steps)))
            row: dict[str, Any] = {"policy": name, "worlds": len(present)}
            for key, drawn in samples.items():
                row[key] = float(np.mean(point[key]))
                row[f"{key}_ci"] = _ci(np.mean(np.stack(drawn), axis=0))
        rows.append(row)
    return rows


def mean_equal_share(worlds: Sequence[WorldResult]) -> list[dict[str, Any]]:
    """Per HERA variant, the mean over worlds of its equal-share comparison (intervals: the mean of
    the per-world interval ends, a conservative summary; every world's own interval is in its table)."""
    names = list(dict.fromkeys(e.policy for world in worlds for e in world.equal_share))
    rows = []
    for name in names:
        found = [e for world in worlds for e in world.equal_share if e.policy == name]
        if len(found) < len(worlds):
            continue

        def mean(values: Sequence[float]) -> float:
            return float(np.mean(values))

        rows.append({
            "policy": name, "worlds": len(found), "slm_share": mean([e.slm_share for e in found]),
            "accuracy": mean([e.accuracy for e in found]), "hybrid_accuracy": mean([e.hybrid_accuracy for e in found]),
            "random_accuracy": mean([e.random_accuracy for e in found]),
            "delta_hybrid": mean([e.delta_hybrid for e in found]),
            "delta_hybrid_ci": (mean([e.delta_hybrid_ci[0] for e in found]),
                                mean([e.delta_hybrid_ci[1] for e in found])),
            "delta_random": mean([e.delta_random for e in found]),
            "delta_random_ci": (mean([e.delta_random_ci[0] for e in found]),
                                mean([e.delta_random_ci[1] for e in found])),
            "worlds_hera_ahead_of_hybrid_by_5": sum(e.delta_hybrid >= 0.05 for e in found),
            "worlds_hera_ahead_of_random": sum(e.delta_random > 0 for e in found),
        })  # fmt: skip
    return rows


# -- the whole matrix ----------------------------------------------------------------------------


def build_matrix(base: Settings, config: MatrixConfig, progress: MatrixProgress | None = None) -> MatrixResult:
    progress = progress or MatrixProgress()
    if base.edge.backend != "sim" or base.cloud.backend != "sim":
        raise ValueError(
            "`eval matrix` runs on the simulated world; set HERA_EDGE__BACKEND and HERA_CLOUD__BACKEND to sim"
        )
    from hera_router.simulator.presets import load_behaviour

    for preset in config.worlds:
        load_behaviour(preset, base.simulator.config_path)  # an unknown preset fails before any work
    _policy_names(config)
    started = time.perf_counter()
    config.workdir.mkdir(parents=True, exist_ok=True)
    worlds: list[WorldResult] = []
    pairs = [(preset, seed) for preset in config.worlds for seed in config.seeds]
    for number, (preset, seed) in enumerate(pairs, start=1):
        progress.log(f"[bold]world {number}/{len(pairs)}: preset {preset}, seed {seed}[/]")
        world = run_world(base, preset, seed, config, progress)
        worlds.append(world)
        progress.log(f"world {preset} / seed {seed} done in {world.info['seconds']:.0f} s")
    result = MatrixResult(
        worlds, mean_rows(worlds, config.resamples), mean_equal_share(worlds), time.perf_counter() - started, config.out
    )
    write_matrix(result, config)
    return result


# -- writing -------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return compare.pct(value)


def _pct_ci(value: float, ci: Sequence[float]) -> str:
    return compare.pct_ci(value, (ci[0], ci[1]))


def _signed(value: float, ci: Sequence[float]) -> str:
    if math.isnan(value):
        return "–"
    return f"{100 * value:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def world_table(world: WorldResult) -> str:
    headers = ["policy", "n", "accuracy % [95% CI]", *(f"acc. {f} %" for f in world.families)]
    headers += ["SLM share % [95% CI]", "remote cost vs All-LLM [95% CI]", "steps/req", "decision ms/step", "note"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for m in world.rows:
        note = world.errors.get(m.policy, "")
        not_counted = m.off_tree + m.unavailable
        if not_counted and not note:
            note = f"{not_counted} requests not evaluated"
        ms = world.decision_ms.get(m.policy, math.nan)
        cells = [f"`{m.policy}`", str(m.counted), compare.pct_ci(m.accuracy, m.accuracy_ci)]
        cells += [_pct(m.accuracy_by_family.get(f, math.nan)) for f in world.families]
        cells += [
            compare.pct_ci(m.slm_usage, m.slm_usage_ci), compare.ratio_ci(m.cost, m.cost_ci),
            "–" if math.isnan(m.subtasks_per_request) else f"{m.subtasks_per_request:.2f}",
            "–" if math.isnan(ms) else f"{ms:.2f}", note.replace("|", "/")[:120],
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def equal_share_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| policy | SLM share % | accuracy % | HybridLLM@share % | Random@share % (its share) | "
        "HERA − HybridLLM@share, pts [95% CI] | HERA − Random@share, pts [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        hybrid = _pct(r["hybrid_accuracy"]) + ("" if r.get("hybrid_in_range", True) else " (end of sweep)")
        random_share = f" ({_pct(r['random_share'])})" if "random_share" in r else ""
        lines.append(
            f"| `{r['policy']}` | {_pct(r['slm_share'])} | {_pct(r['accuracy'])} | {hybrid} | "
            f"{_pct(r['random_accuracy'])}{random_share} | {_signed(r['delta_hybrid'], r['delta_hybrid_ci'])} | "
            f"{_signed(r['delta_random'], r['delta_random_ci'])} |"
        )
    return "\n".join(lines)


SD_PAIRS = (("hera", "hera-sd-partial"), ("hera-paper", "hera-paper-sd-partial"))
"""All-or-nothing SD next to partial SD (issue 19), per world."""


def sd_table(worlds: Sequence[WorldResult]) -> str:
    """Per world and pair: SLM share and accuracy of all-or-nothing and partial SD side by side."""
    lines = [
        "| world | all-or-nothing | accuracy % | SLM share % | partial | accuracy % | SLM share % "
        "| SD part calls (partial) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world in worlds:
        by = {m.policy: m for m in world.rows}
        for whole, partial in SD_PAIRS:
            if whole not in by or partial not in by:
                continue
            a, b = by[whole], by[partial]
            calls = sum(1 for o in world.outcomes.get(partial, []) for s in o.steps if s.branch == "sd")
            lines.append(
                f"| {world.name} | `{whole}` | {compare.pct_ci(a.accuracy, a.accuracy_ci)} | "
                f"{compare.pct_ci(a.slm_usage, a.slm_usage_ci)} | `{partial}` | "
                f"{compare.pct_ci(b.accuracy, b.accuracy_ci)} | "
                f"{compare.pct_ci(b.slm_usage, b.slm_usage_ci)} | {calls} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def mean_table(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ["policy", "worlds", "accuracy % [95% CI]", "SLM share % [95% CI]", "remote cost vs All-LLM [95% CI]",
               "steps/req", "decision ms/step"]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        if "accuracy" not in r:
            lines.append(f"| `{r['policy']}` | {r['worlds']} | {r.get('note', '')} | | | | |")
            continue
        lines.append(
            f"| `{r['policy']}` | {r['worlds']} | {_pct_ci(r['accuracy'], r['accuracy_ci'])} | "
            f"{_pct_ci(r['slm_share'], r['slm_share_ci'])} | {compare.ratio_ci(r['cost'], tuple(r['cost_ci']))} | "
            f"{r['steps']:.2f} | {r['decision_ms']:.2f} |"
        )
    return "\n".join(lines)


def console_table(title: str, rows: Sequence[Mapping[str, Any]]) -> Any:
    """A compact rich table (no intervals) of per-world or mean rows; the files hold the intervals."""
    from rich.table import Table

    table = Table(title=f"{title} ({LABEL})", title_justify="left")
    for header in ("policy", "accuracy %", "SLM share %", "cost vs All-LLM", "steps", "decision ms/step"):
        table.add_column(header, justify="left" if header == "policy" else "right")

    def number(value: Any, scale: float = 1.0, digits: int = 1) -> str:
        return (
            "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{scale * value:.{digits}f}"
        )

    for r in rows:
        share = r.get("slm_share", r.get("slm_usage"))
        steps = r.get("steps", r.get("subtasks_per_request"))
        table.add_row(
            str(r["policy"]), number(r.get("accuracy"), 100), number(share, 100), number(r.get("cost"), digits=2),
            number(steps, digits=2), number(r.get("decision_ms"), digits=2),
        )  # fmt: skip
    return table


def _banner() -> str:
    return (
        f"> **{LABEL}.** Every number on this page was measured on the simulated agent world "
        "(`hera_router/simulator`), not on real models or real tasks.\n"
    )


def _versions(versions: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} v{v}" for k, v in sorted(versions.items())) or "none"


def render_markdown(result: MatrixResult, config: MatrixConfig) -> str:
    from hera_router.routing.hera import VARIANTS

    held_out = "arithmetic" if config.train_family == "lookup" else "the other family"
    parts = [
        f"# Evaluation matrix ({LABEL})",
        "",
        _banner(),
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} in {result.seconds:.0f} s by:",
        "",
        f"```\n{config.command or 'hera-router eval matrix'}\n```",
        "",
        f"Worlds: {', '.join(w.name for w in result.worlds)}. Per world: `bootstrap` on {config.train_n} "
        f"`{config.train_family}` requests (profile, train, calibrate, promote), HybridLLM fitted on that profile, "
        f"Oracle searched on the evaluation profile; {config.eval_n} `{config.eval_family}` evaluation requests "
        f"from offset {config.train_n} ({held_out} held out). Replay with steps the profiles lack run on the "
        "simulated backends. 95 % intervals: bootstrap over requests (per world), stratified by world for the mean. "
        "Decision ms/step: routing time over executed steps (a span's covered steps count at 0).",
        "",
        f"## Mean over {len(result.worlds)} worlds ({LABEL})",
        "",
        mean_table(result.mean_rows),
        "",
        f"## At HERA's SLM share, mean over worlds ({LABEL})",
        "",
        "HybridLLM's threshold swept and its accuracy interpolated at each HERA variant's SLM share; Random "
        "replayed with p = that share. Deltas in accuracy points; intervals: mean of the per-world paired "
        "bootstrap interval ends. Target (issue 14): `hera` ≥ HybridLLM@share + 5 and > Random@share on every world.",
        "",
        equal_share_table(result.mean_equal_share),
        "",
    ]
    if table := sd_table(result.worlds):
        parts += [
            f"## Partial decomposition against all-or-nothing, per world ({LABEL})",
            "",
            "Decomposed steps run part by part on the simulator (each part on its executor). SD part calls: "
            "model calls of decomposition parts under the partial policy. The graph family: "
            "`hera-router eval graphs` (reports/issue19-graphs/).",
            "",
            table,
            "",
        ]
    for world in result.worlds:
        parts += [
            f"## World {world.name} ({LABEL})",
            "",
            f"{world.info.get('requests')} evaluation requests; {world.info.get('extension_steps')} steps run on the "
            f"simulator beyond the profiles; HybridLLM tuned threshold {world.info.get('hybridllm_threshold', 0):.3f}; "
            f"estimators {_versions(world.info.get('estimator_versions', {}))}; "
            f"{world.info.get('seconds', 0):.0f} s.",
            "",
            world_table(world),
            "",
            f"At equal SLM share ({LABEL}):",
            "",
            equal_share_table([e.to_json() for e in world.equal_share]) if world.equal_share else
            "No HERA variant could be replayed on this world (see the notes above).",
            "",
            f"![accuracy vs SLM share]({world.slug}.png)",
            "",
        ]  # fmt: skip
    missing = [n for n in VARIANTS if all(n not in w.outcomes for w in result.worlds)]
    if missing and not config.policies:
        parts += [f"Registered HERA variants not replayed: {', '.join(missing)}.", ""]
    return "\n".join(parts)


def to_json(result: MatrixResult, config: MatrixConfig) -> dict[str, Any]:
    cleaned: dict[str, Any] = _clean({
        "label": LABEL, "command": config.command, "seconds": round(result.seconds, 1),
        "config": {"worlds": list(config.worlds), "seeds": list(config.seeds), "train_family": config.train_family,
                   "eval_family": config.eval_family, "train_n": config.train_n, "eval_n": config.eval_n,
                   "node_budget": config.node_budget, "resamples": config.resamples},
        "mean": result.mean_rows,
        "mean_equal_share": result.mean_equal_share,
        "worlds": [to_json_world(w) for w in result.worlds],
    })  # fmt: skip
    return cleaned


def to_json_world(w: WorldResult) -> dict[str, Any]:
    """One world's results as plain JSON (NaN as null)."""
    cleaned: dict[str, Any] = _clean({
        "preset": w.preset, "seed": w.seed, "info": w.info, "families": w.families,
        "policies": [{**m.to_json(), "decision_ms_per_step": w.decision_ms.get(m.policy),
                      "error": w.errors.get(m.policy)} for m in w.rows],
        "hybridllm_sweep": [{"threshold": t, **m.to_json()} for t, m in w.hybrid_sweep],
        "equal_share": [e.to_json() for e in w.equal_share],
    })  # fmt: skip
    return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, Path | uuid.UUID):
        return str(value)
    return value


def write_matrix(result: MatrixResult, config: MatrixConfig) -> None:
    from hera_router.evaluation import plots

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(render_markdown(result, config), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(to_json(result, config), indent=1), encoding="utf-8")
    for world in result.worlds:
        plots.share_plot(
            world.rows, [m for _t, m in world.hybrid_sweep], out / f"{world.slug}.png",
            title=f"{LABEL}: accuracy vs SLM share, world {world.name}",
        )  # fmt: skip
