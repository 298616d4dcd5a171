"""Every policy replayed on one simulated world, against HybridLLM and Random at HERA's own SLM share.

Per world, in its own folder under the work folder (see ``worlds``): the bootstrap (reused when
the folder has one), an evaluation profile offset past the training requests (so the training
family's evaluation requests are new and the other family is held out), HybridLLM fitted on the
training profile and the Oracle plan searched on the evaluation profile. Every policy the registry
knows is replayed on the evaluation profile; steps the profile lacks run on the simulated backends
and decomposed steps run their parts there, so partial and all-or-nothing SD are both exact.
Policies a replay cannot evaluate show as such, with the reason.

Equal SLM share: HybridLLM's threshold is swept over the quantiles of its scores on the evaluation
subtasks and its accuracy interpolated at each HERA variant's SLM share; Random is replayed with
p = that share. Deltas get paired bootstrap intervals (``stats``). Everything here is SIMULATED.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.evaluation import compare
from hera_router.evaluation.metrics import PolicyMetrics, RequestOutcome
from hera_router.evaluation.render import clean, number, pct, pct_ci, points_ci, ratio_ci, table
from hera_router.evaluation.stats import Indices, accuracy_at_share, common_columns, paired_draws, percentile_interval
from hera_router.evaluation.worlds import (
    ProfileSpec,
    Progress,
    WorldTraining,
    bootstrapped,
    fit_baselines,
    load_state,
    profiled,
    save_state,
    without_training_requests,
    world_settings,
)

if TYPE_CHECKING:
    from hera_router.config import RoutingSettings, Settings
    from hera_router.db.runtime import Runtime
    from hera_router.training.replay import ProfileSet, Replayer


DEFAULT_WORLDS = ("default", "strong-slm", "weak-slm", "weak-logprob")


DEFAULT_SEEDS = (0, 1)


HYBRID_GRID = 20
"""HybridLLM thresholds at this many quantiles of its scores (plus its tuned one and both ends)."""


@dataclass
class WorldConfig:
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

    def training(self) -> WorldTraining:
        return WorldTraining(self.train_family, self.train_n, self.node_budget, self.retrain, self.recalibrate)


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
        cleaned: dict[str, Any] = clean(self.__dict__)
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


def policies_to_replay(config: WorldConfig) -> list[str]:
    from hera_router.routing.registry import policy_names as registered

    known = registered()
    if config.policies:
        unknown = [n for n in config.policies if n not in known]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(known)}")
        return list(config.policies)
    ordered = [n for n in dict.fromkeys((*compare.BASELINES, *compare.ABLATIONS)) if n in known]
    return ordered + [n for n in known if n not in ordered]


def run_world(
    base: Settings, preset: str, seed: int, config: WorldConfig, progress: Progress | None = None
) -> WorldResult:
    """One world: bootstrap (or reuse), profile the evaluation set, fit the baselines, replay."""
    from hera_router.db.migrate import upgrade
    from hera_router.db.runtime import Runtime

    progress = progress or Progress()
    folder = config.workdir / f"{preset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = world_settings(base, folder, preset, seed, config.training())
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = load_state(folder)
    started = time.perf_counter()
    try:
        result = _run_world(runtime, state, folder, config, progress)
    finally:
        save_state(folder, state)
        runtime.close()
    result.preset, result.seed = preset, seed
    result.info["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _run_world(
    runtime: Runtime, state: dict[str, Any], folder: Path, config: WorldConfig, progress: Progress
) -> WorldResult:
    from hera_router.estimators.loader import RegistryEstimatorSource
    from hera_router.training.replay import Replayer, load_profile, simulated_extension, simulated_latency

    settings = runtime.settings
    train_run = bootstrapped(runtime, state, config.training(), progress)
    save_state(folder, state)
    spec = ProfileSpec("eval", config.eval_family, config.eval_n, config.train_n, config.node_budget)
    with progress.task(f"profiling {config.eval_n} {config.eval_family} evaluation requests", config.eval_n) as tick:
        eval_run = profiled(runtime, state, spec, progress.log, on_request=lambda done, _total: tick(done))
    save_state(folder, state)
    train_profile = load_profile(settings, runtime.sessions, train_run)
    profile = without_training_requests(load_profile(settings, runtime.sessions, eval_run), train_profile, progress.log)
    baselines = fit_baselines(settings, train_profile, profile, folder, progress.log)
    runtime.settings = settings = baselines.settings
    estimators = RegistryEstimatorSource(runtime)()
    if estimators is None:
        progress.log("no active estimators after bootstrap: HERA and its ablations will show as not evaluated")
    replayer = Replayer(
        profile,
        estimators,
        max_steps=settings.routing.max_steps,
        latency=simulated_latency(settings),
        extension=simulated_extension(settings),
        run_parts=True,
    )
    result = _replay_world(replayer, profile, settings.routing, folder, config, progress)
    result.info = {
        "train_profile": str(train_run),
        "eval_profile": str(eval_run),
        "requests": len(profile.trees),
        "estimator_versions": dict(estimators.versions) if estimators is not None else {},
        "hybridllm_threshold": baselines.hybrid.router.threshold,
        "oracle_accuracy": baselines.oracle.accuracy,
        "oracle_slm_usage": baselines.oracle.slm_usage,
        "extension_steps": replayer.extension.steps if replayer.extension is not None else 0,
    }
    return result


def _replay_world(
    replayer: Replayer,
    profile: ProfileSet,
    routing: RoutingSettings,
    folder: Path,
    config: WorldConfig,
    progress: Progress,
) -> WorldResult:
    from hera_router.routing.hera import VARIANTS

    names = policies_to_replay(config)
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
            replayer,
            ["random"],
            routing.model_copy(update={"random_p_slm": _finite(row.metrics.slm_usage)}),
            all_llm,
            resamples=config.resamples,
        ).rows[0]
        equal.append(
            equal_share(name, row.outcomes, [(t, r.outcomes) for t, r in sweep], random_row.outcomes, config.resamples)
        )
    families = sorted({t.family for t in profile.trees})
    return WorldResult(
        preset="",
        seed=0,
        rows=[r.metrics for r in rows],
        errors={r.name: r.error for r in rows if r.error},
        outcomes={r.name: r.outcomes for r in rows},
        all_llm_cost=all_llm,
        decision_ms={r.name: decision_ms_per_step(r.outcomes) for r in rows},
        hybrid_sweep=[(t, r.metrics) for t, r in sweep],
        equal_share=equal,
        families=families,
    )


def _finite(value: float, default: float = 0.0) -> float:
    return default if math.isnan(value) else value


def _hybrid_sweep(
    replayer: Replayer,
    profile: ProfileSet,
    routing: RoutingSettings,
    folder: Path,
    all_llm: Mapping[str, float],
    config: WorldConfig,
    progress: Progress,
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


def decision_ms_per_step(outcomes: Sequence[RequestOutcome]) -> float:
    """Time spent deciding over executed steps, in ms (a span's covered steps count, at 0 ms)."""
    rows = [o for o in outcomes if o.counted]
    steps = sum(o.n_steps for o in rows)
    return 1e3 * sum(o.decision_s for o in rows) / steps if steps else math.nan


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
    hera, rand, *points = common_columns(outcomes, random_outcomes, *(point for _t, point in sweep))

    def at(pick: Indices | None) -> tuple[float, float, bool, float, float]:
        share, accuracy = hera.point(pick)
        hybrid, in_range = accuracy_at_share(share, points, pick)
        random_share, random_accuracy = rand.point(pick)
        return accuracy, hybrid, in_range, random_accuracy, random_share

    accuracy, hybrid, in_range, random_accuracy, random_share = at(None)
    drawn = [at(pick) for pick in paired_draws(len(hera.keys), resamples, seed)]
    share = hera.point()[0]
    return EqualShare(
        policy=name,
        slm_share=share,
        accuracy=accuracy,
        hybrid_accuracy=hybrid,
        hybrid_in_range=in_range,
        random_accuracy=random_accuracy,
        random_share=random_share,
        delta_hybrid=accuracy - hybrid,
        delta_hybrid_ci=percentile_interval([a - h for a, h, _in, _r, _s in drawn]),
        delta_random=accuracy - random_accuracy,
        delta_random_ci=percentile_interval([a - r for a, _h, _in, r, _s in drawn]),
    )


def world_table(world: WorldResult) -> str:
    headers = ["policy", "n", "accuracy % [95% CI]", *(f"acc. {f} %" for f in world.families)]
    headers += ["SLM share % [95% CI]", "remote cost vs All-LLM [95% CI]", "steps/req", "decision ms/step", "note"]
    rows = []
    for m in world.rows:
        note = world.errors.get(m.policy, "")
        not_counted = m.off_tree + m.unavailable
        if not_counted and not note:
            note = f"{not_counted} requests not evaluated"
        cells = [f"`{m.policy}`", str(m.counted), pct_ci(m.accuracy, m.accuracy_ci)]
        cells += [pct(m.accuracy_by_family.get(f, math.nan)) for f in world.families]
        cells += [pct_ci(m.slm_usage, m.slm_usage_ci), ratio_ci(m.cost, m.cost_ci), number(m.subtasks_per_request)]
        cells += [number(world.decision_ms.get(m.policy, math.nan)), note.replace("|", "/")[:120]]
        rows.append(cells)
    return table(headers, rows)


def equal_share_table(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ["policy", "SLM share %", "accuracy %", "HybridLLM@share %", "Random@share % (its share)"]
    headers += ["HERA − HybridLLM@share, pts [95% CI]", "HERA − Random@share, pts [95% CI]"]
    cells = []
    for r in rows:
        hybrid = pct(r["hybrid_accuracy"]) + ("" if r.get("hybrid_in_range", True) else " (end of sweep)")
        random_share = f" ({pct(r['random_share'])})" if "random_share" in r else ""
        cells.append(
            [
                f"`{r['policy']}`",
                pct(r["slm_share"]),
                pct(r["accuracy"]),
                hybrid,
                f"{pct(r['random_accuracy'])}{random_share}",
                points_ci(r["delta_hybrid"], r["delta_hybrid_ci"]),
                points_ci(r["delta_random"], r["delta_random_ci"]),
            ]
        )
    return table(headers, cells)


def to_json_world(w: WorldResult) -> dict[str, Any]:
    """One world's results as plain JSON (NaN as null)."""
    cleaned: dict[str, Any] = clean(
        {
            "preset": w.preset,
            "seed": w.seed,
            "info": w.info,
            "families": w.families,
            "policies": [
                {**m.to_json(), "decision_ms_per_step": w.decision_ms.get(m.policy), "error": w.errors.get(m.policy)}
                for m in w.rows
            ],
            "hybridllm_sweep": [{"threshold": t, **m.to_json()} for t, m in w.hybrid_sweep],
            "equal_share": [e.to_json() for e in w.equal_share],
        }
    )
    return cleaned
