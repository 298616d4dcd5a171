"""``hera-router eval report``: the whole evaluation in one command, written to a folder.

1. Profile (or reuse) a *training* set of one family and an *evaluation* set of every family, so
   the family left out of training is held out (the paper's generalisation setting).
2. Train and promote (or reuse) the five estimators on the training profile; fit the HybridLLM
   router on it and search the Oracle plan on the evaluation profile.
3. Replay every policy and ablation on the evaluation profile; sweep τ_req and κ base; calibrate
   to a target SLM share and a target cost ratio (validation half → held-out half).
4. Run a subset live through the embedded pipeline and check it against the replay.
5. Write markdown pages, ``results.json`` and PNG plots, with the exact command and versions.
   Every page and plot says when the data is simulated.

State lives in a work folder (``--workdir``): its SQLite database holds the profiles, the
estimator registry and the live runs, and ``state.json`` remembers which runs to reuse.
"""

from __future__ import annotations

import math
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.evaluation import calibrate as calibration
from hera_router.evaluation import compare, plots, sweeps
from hera_router.evaluation.live import LiveItem, live_system, run_live
from hera_router.evaluation.metrics import PolicyMetrics, RequestOutcome, summarise
from hera_router.evaluation.render import LABEL, pct, pct_ci, table, write_page, write_results
from hera_router.evaluation.worlds import (
    ProfileSpec,
    fit_baselines,
    load_state,
    profiled,
    save_state,
    without_training_requests,
)
from hera_router.training.replay import (
    ProfileSet,
    Replayer,
    ReplayTree,
    load_profile,
    simulated_extension,
    simulated_latency,
)

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime
    from hera_router.routing.estimators import Estimators

Log = Callable[[str], None]

LIVE_POLICIES = ("all-slm", "all-llm", "random", "hybridllm", "minions", "oracle", "hera")


@dataclass
class ReportConfig:
    out: Path
    workdir: Path
    train_family: str = "lookup"
    eval_family: str = "mixed"
    train_n: int = 80
    eval_n: int = 60
    node_budget: int = 64
    live_n: int = 16
    target_slm_share: float = 0.7
    target_cost: float = 0.3
    resamples: int = 1000
    retrain: bool = False
    extend: bool = True
    command: str = ""


@dataclass
class ReportResult:
    out: Path
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("hera-router", "torch", "transformers", "peft", "sentence-transformers", "numpy", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _prefixed(log: Log, prefix: str) -> Log:
    return lambda message: log(prefix + message)


def _train(runtime: Runtime, state: dict[str, Any], run_id: uuid.UUID, retrain: bool, log: Log) -> list[dict[str, Any]]:
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES
    from hera_router.training.evaluation import headline
    from hera_router.training.labels import request_trees
    from hera_router.training.profiling import load_trees
    from hera_router.training.trainers import train_estimator

    with session_scope(runtime.sessions) as session:
        active = {row.name: row for row in EstimatorVersionRepository(session).all_active()}
        reusable = not retrain and state.get("estimators_run") == str(run_id) and set(ESTIMATOR_NAMES) <= set(active)
        if reusable:
            log("reusing the active estimators trained on the training profile")
    if not reusable:
        trees = request_trees(load_trees(runtime.sessions, run_id))
        for name in ESTIMATOR_NAMES:
            started = time.perf_counter()
            trained = train_estimator(runtime, name, run_id, trees=trees, progress=_prefixed(log, f"  {name}: "))
            if trained is None:
                raise RuntimeError(f"training {name} was claimed by another run; retry in a second")
            with session_scope(runtime.sessions) as session:
                EstimatorVersionRepository(session).promote(name, trained.version)
            log(f"trained {name} v{trained.version} in {time.perf_counter() - started:.0f} s")
        state["estimators_run"] = str(run_id)
    rows = []
    with session_scope(runtime.sessions) as session:
        for row in EstimatorVersionRepository(session).all_active():
            metric, value, baseline = headline(row.metrics) if "metric" in row.metrics else ("-", math.nan, math.nan)
            rows.append(
                {
                    "name": row.name,
                    "version": row.version,
                    "variant": row.metrics.get("variant"),
                    "metric": metric,
                    "value": value,
                    "baseline": baseline,
                }
            )
    return sorted(rows, key=lambda r: str(r["name"]))


def _agreement(replayed: list[RequestOutcome], live: list[RequestOutcome]) -> dict[str, int]:
    """Requests whose live run took the replay's decisions and reached the replay's answer."""
    by_key = {o.key: o for o in replayed if o.counted}
    same_route = same_answer = compared = 0
    for outcome in live:
        other = by_key.get(outcome.key)
        if other is None:
            continue
        compared += 1
        same_route += [(s.executor, s.branch) for s in outcome.steps] == [(s.executor, s.branch) for s in other.steps]
        same_answer += outcome.answer == other.answer
    return {"compared": compared, "same_decisions": same_route, "same_answer": same_answer}


def build_report(settings: Settings, config: ReportConfig, log: Log = print) -> ReportResult:
    from hera_router.db.migrate import upgrade
    from hera_router.db.runtime import Runtime
    from hera_router.estimators.loader import RegistryEstimatorSource

    started = time.perf_counter()
    config.workdir.mkdir(parents=True, exist_ok=True)
    config.out.mkdir(parents=True, exist_ok=True)
    simulated = settings.edge.backend == "sim" and settings.cloud.backend == "sim"
    if not simulated:
        raise ValueError(
            "`eval report` profiles the simulated world; point HERA_EDGE__BACKEND/HERA_CLOUD__BACKEND at sim"
        )
    label = LABEL
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = load_state(config.workdir)
    budget = config.node_budget
    try:
        train_run = profiled(runtime, state, ProfileSpec("train", config.train_family, config.train_n, 0, budget), log)
        save_state(config.workdir, state)
        # Offsetting by train_n keeps the evaluation requests of the training family disjoint from
        # the training ones (instance i of a family is the same request in every set).
        spec = ProfileSpec("eval", config.eval_family, config.eval_n, config.train_n, budget)
        eval_run = profiled(runtime, state, spec, log)
        save_state(config.workdir, state)
        estimator_rows = _train(runtime, state, train_run, config.retrain, log)
        save_state(config.workdir, state)

        train_profile = load_profile(settings, runtime.sessions, train_run)
        profile = without_training_requests(load_profile(settings, runtime.sessions, eval_run), train_profile, log)
        baselines = fit_baselines(settings, train_profile, profile, config.workdir, log)
        hybrid, oracle_result = baselines.hybrid, baselines.oracle
        runtime.settings = settings = baselines.settings
        estimators = RegistryEstimatorSource(runtime)()
        if estimators is None:
            raise RuntimeError("no active estimators after training")
        replayed = _replay_all(settings, profile, estimators, config, log)
        families = sorted({t.family for t in profile.trees})
        log(f"sweeps and calibration done at {time.perf_counter() - started:.0f} s")
        live_rows, agreement = _live(settings, profile, replayed.table, config, log)
    finally:
        save_state(config.workdir, state)
        runtime.close()

    result = ReportResult(config.out, time.perf_counter() - started)
    context = {
        "label": label,
        "command": config.command,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": _versions(),
        "estimator_versions": dict(estimators.versions),
        "train_profile": {"run_id": str(train_run), **train_profile.config},
        "eval_profile": {"run_id": str(eval_run), **profile.config, "requests_used": len(profile.trees)},
        "families": families,
        "train_family": config.train_family,
        "extension_steps": replayed.extension_steps,
        "seconds": round(result.seconds),
        "hybridllm": {"threshold": hybrid.router.threshold, "relaxation": hybrid.router.relaxation},
        "oracle": {
            "accuracy": oracle_result.accuracy,
            "slm_usage": oracle_result.slm_usage,
            "target_accuracy": oracle_result.target_accuracy,
            "all_llm_accuracy": oracle_result.all_llm_accuracy,
        },
    }
    result.summary = write_report(config.out, context, replayed, estimator_rows, live_rows, agreement)
    return result


@dataclass
class Replayed:
    table: compare.Comparison
    sweep_points: dict[str, list[sweeps.SweepPoint]]
    calibrations: list[calibration.Calibration]
    extension_steps: int
    reference: list[PolicyMetrics]
    """HERA and its ablations with the profiled (perfect) estimators."""
    reference_sweeps: dict[str, list[sweeps.SweepPoint]]


def _replay_all(
    settings: Settings, profile: ProfileSet, estimators: Estimators, config: ReportConfig, log: Log
) -> Replayed:
    """Every policy and ablation, both sweeps and both calibrations, on one cached replayer; then
    HERA, its ablations and the sweeps again with the profiled estimators."""
    routing = settings.routing
    replayer = Replayer(
        profile,
        estimators,
        max_steps=routing.max_steps,
        latency=simulated_latency(settings),
        extension=simulated_extension(settings) if config.extend else None,
    )
    all_llm = profile.all_llm_costs()
    names = list(dict.fromkeys([*compare.BASELINES, *compare.ABLATIONS]))
    started = time.perf_counter()
    table = compare.evaluate(replayer, names, routing, all_llm, resamples=config.resamples)
    log(f"replayed {len(names)} policies on {len(profile.trees)} requests in {time.perf_counter() - started:.0f} s")
    sweep_points = {
        parameter: sweeps.sweep(replayer, routing, parameter, grid, all_llm, resamples=config.resamples)
        for parameter, grid in sweeps.SWEEPS.items()
    }
    validation, held_out = calibration.split_keys([t.key for t in profile.trees])
    calibrations = [
        calibration.calibrate(
            replayer,
            routing,
            all_llm,
            target="slm_share",
            goal=config.target_slm_share,
            validation=validation,
            held_out=held_out,
            resamples=config.resamples,
        ),
        calibration.calibrate(
            replayer,
            routing,
            all_llm,
            target="cost",
            goal=config.target_cost,
            validation=validation,
            held_out=held_out,
            resamples=config.resamples,
        ),
    ]
    from hera_router.estimators.similarity import shared_embedder
    from hera_router.evaluation.reference_estimators import profiled_estimators

    embedder = shared_embedder(settings.estimators.similarity_cache_size)
    reference_bundle = profiled_estimators(profile, embedder.embed, int(embedder.embed("dimension").shape[0]))
    reference_replayer = Replayer(
        profile,
        reference_bundle,
        max_steps=routing.max_steps,
        latency=simulated_latency(settings),
        extension=replayer.extension,
    )
    reference_table = compare.evaluate(
        reference_replayer, compare.ABLATIONS, routing, all_llm, resamples=config.resamples
    )
    reference = [replace(row.metrics, policy=f"{row.name} (profiled estimators)") for row in reference_table.rows]
    reference_sweeps = {
        parameter: sweeps.sweep(reference_replayer, routing, parameter, grid, all_llm, resamples=config.resamples)
        for parameter, grid in sweeps.SWEEPS.items()
    }
    return Replayed(
        table,
        sweep_points,
        calibrations,
        replayer.extension.steps if replayer.extension is not None else 0,
        reference,
        reference_sweeps,
    )


def _live(
    settings: Settings, profile: ProfileSet, table: compare.Comparison, config: ReportConfig, log: Log
) -> tuple[list[PolicyMetrics], dict[str, dict[str, int]]]:
    if config.live_n <= 0:
        return [], {}
    by_family: dict[str, list[ReplayTree]] = {}
    for tree in profile.trees:
        by_family.setdefault(tree.family, []).append(tree)
    # Round robin over the families, so a small live set still holds every family.
    trees = [t for group in zip_longest(*by_family.values()) for t in group if t is not None][: config.live_n]
    items = [LiveItem.of_tree(t) for t in trees]
    all_llm = profile.all_llm_costs()
    rows: list[PolicyMetrics] = []
    agreement: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    with live_system(settings) as app:
        for name in LIVE_POLICIES:
            outcomes = run_live(app, items, name, timeout_s=1800)
            rows.append(summarise(name, outcomes, all_llm, resamples=config.resamples))
            replayed = table.get(name)
            if replayed is not None:
                agreement[name] = _agreement(replayed.outcomes, outcomes)
    log(f"live runs of {len(LIVE_POLICIES)} policies on {len(items)} requests in {time.perf_counter() - started:.0f} s")
    return rows, agreement


# -- writing -------------------------------------------------------------------------------------

PAPER_TABLE_4 = (
    "Paper Table 4 (macro, real models): AIMS 77.62 / 83.58; w/o SD 76.04 / 78.04; URC+SSE+SLE 73.90 / 75.52; "
    "URC+SSE 72.48 / 72.36; URC only 70.10 / 71.98; w/o URC 76.82 / 70.18 (accuracy / SLM usage %)."
)
PAPER_FIG_12 = (
    "Paper Fig. 12 (real models): τ_req 0.50→0.78 raises accuracy 74.25→77.90 % and lowers SLM usage "
    "88.40→76.30 %; τ_sse 0.60→0.80 raises accuracy 75.10→77.65 % and lowers SLM usage 86.20→78.55 %."
)


@dataclass(frozen=True)
class _Pages:
    """What every page of one report is written from."""

    out: Path
    context: dict[str, Any]
    replayed: Replayed
    by_name: dict[str, compare.Evaluated]

    @property
    def label(self) -> str:
        return str(self.context["label"])

    @property
    def families(self) -> list[str]:
        return list(self.context["families"])

    def metrics(self, names: Sequence[str]) -> list[PolicyMetrics]:
        return [self.by_name[n].metrics for n in names if n in self.by_name]

    def write(self, name: str, title: str, parts: Sequence[str]) -> None:
        write_page(self.out, name, title, "\n\n".join(parts), self.label)

    def replay_note(self) -> str:
        context, families = self.context, self.families
        held_out = [f for f in families if f != context["train_family"]]
        return (
            f"Replay on the evaluation profile ({context['eval_profile']['requests_used']} requests, "
            f"families {', '.join(families)}; `{context['train_family']}` is the estimators' training family, "
            f"{', '.join(held_out) or 'none'} held out). Steps the profile lacked were run on the simulated "
            f"backends and added to the trees ({context['extension_steps']} steps in all); `off-tree` counts "
            "requests that could not be finished. 95 % intervals: bootstrap over requests (1000 resamples). "
            "Latency: the simulator's latency model on each step's tokens plus measured decision time."
        )


def _plots(pages: _Pages) -> None:
    replayed = pages.replayed
    references = pages.metrics(("all-slm", "all-llm", "oracle", "hybridllm"))
    for parameter, points in replayed.sweep_points.items():
        more = {"hera with profiled estimators": replayed.reference_sweeps.get(parameter, [])}
        path = pages.out / f"sweep-{parameter.replace('_', '-')}.png"
        plots.pareto_plot(points, references, path, data_label=pages.label, more=more)
    reference_hera = [r for r in replayed.reference if r.policy.startswith("hera (")]
    rows = pages.metrics(compare.BASELINES) + pages.metrics(compare.ABLATIONS)[1:] + reference_hera
    plots.policies_plot(rows, pages.out / "policies.png", data_label=pages.label)


def _policies_page(pages: _Pages) -> None:
    errors = "\n".join(f"- `{row.name}`: {row.error}" for row in pages.replayed.table.rows if row.error)
    pages.write(
        "policies.md",
        "Policies",
        [
            pages.replay_note(),
            compare.markdown_table(pages.metrics(compare.BASELINES), families=pages.families),
            "Steps per HERA branch:",
            compare.branch_table(pages.metrics(compare.ABLATIONS) + pages.replayed.reference),
            "Replay could not evaluate:\n" + errors if errors else "",
            "![policies](policies.png)",
        ],
    )


def _ablations_page(pages: _Pages) -> None:
    pages.write(
        "ablations.md",
        "Ablations (the paper's Table 4 rows first)",
        [
            pages.replay_note(),
            compare.markdown_table(pages.metrics(compare.ABLATIONS), families=pages.families, latency=False),
            "The same rows with the profiled estimators (read off the evaluation trees: what the routing logic "
            "does with perfect predictors; `evaluation/reference_estimators.py`):",
            compare.markdown_table(pages.replayed.reference, families=pages.families, latency=False),
            PAPER_TABLE_4,
        ],
    )


def _sweeps_page(pages: _Pages) -> None:
    body = []
    for parameter, points in pages.replayed.sweep_points.items():
        body += [
            f"## {plots.LABELS.get(parameter, parameter)}",
            "Trained estimators:",
            sweeps.markdown(points),
            "Profiled (perfect) estimators:",
            sweeps.markdown(pages.replayed.reference_sweeps.get(parameter, [])),
            f"![{parameter}](sweep-{parameter.replace('_', '-')}.png)",
        ]
    pages.write("sweeps.md", "Threshold sweeps", [*body, PAPER_FIG_12])


def _calibration_row(c: calibration.Calibration) -> list[str]:
    v, h = c.validation, c.held_out

    def fmt(x: float) -> str:
        return f"{100 * x:.1f} %" if c.target == "slm_share" else f"{x:.2f}"

    met = "yes" if c.met else "no"
    thresholds = [f"{c.tau_req:.2f}", f"{c.kappa_base:.2f}"]
    held_out = [pct_ci(h.accuracy, h.accuracy_ci), pct(h.slm_usage), f"{h.cost:.2f}"]
    return [c.target, fmt(c.goal), *thresholds, met, fmt(c.achieved(v)), fmt(c.achieved(h)), *held_out]


def _calibration_page(pages: _Pages) -> None:
    calibrations = pages.replayed.calibrations
    headers = ["target", "goal", "τ_req", "κ base", "met on validation", "validation value", "held-out value"]
    headers += ["held-out accuracy % [95% CI]", "held-out SLM usage %", "held-out cost"]
    pages.write(
        "calibration.md",
        "Calibration",
        [
            "Thresholds searched on the validation half of the evaluation requests (a hash split), "
            f"reported on the other half; tolerance ±{100 * calibrations[0].tolerance:.0f} points "
            "(or ±0.03 cost ratio); among the pairs within tolerance the most accurate on validation wins.",
            table(headers, [_calibration_row(c) for c in calibrations]),
        ],
    )


def _estimators_page(pages: _Pages, estimator_rows: Sequence[dict[str, Any]]) -> None:
    rows = [
        [r["name"], r["version"], r["variant"], r["metric"], f"{r['value']:.3f}", f"{r['baseline']:.3f}"]
        for r in estimator_rows
    ]
    effect = pages.metrics(("hera", "hera-no-urc", "hera-urc-only", "hera-fixed-kappa"))
    perfect = ("hera", "hera-no-urc", "hera-urc-only")
    effect += [r for r in pages.replayed.reference if r.policy.split(" ")[0] in perfect]
    effect += pages.metrics(("all-slm", "all-llm", "oracle"))
    pages.write(
        "estimators.md",
        "Estimators",
        [
            "Validation metrics of the estimators trained on the training profile, against each one's trivial "
            "baseline (training/evaluation.py):",
            table(["estimator", "version", "variant", "metric", "value", "baseline"], rows),
            "Their effect end to end (replay): HERA with every stage, without URC, with URC only, and without "
            "the position-aware κ; then the same policies with the profiled (perfect) estimators, and the references:",
            compare.markdown_table(effect, families=pages.families, latency=False),
        ],
    )


def _live_page(pages: _Pages, live_rows: Sequence[PolicyMetrics], agreement: dict[str, dict[str, int]]) -> None:
    rows = [[f"`{n}`", a["compared"], a["same_decisions"], a["same_answer"]] for n, a in agreement.items()]
    pages.write(
        "live.md",
        "Live runs through the embedded pipeline",
        [
            f"{live_rows[0].requests} evaluation requests (alternating families), run through the real pipeline "
            "(SQLite, in-process Celery workers, simulated backends; HERA with the registry's active estimators). "
            "Latency: the simulated latency each call reported plus the router's recorded decision time.",
            compare.markdown_table(live_rows, families=pages.families),
            "Live against replay on the same requests (decisions = executor and branch of every step):",
            table(["policy", "compared", "same decisions", "same answer"], rows),
        ],
    )


def _index_page(pages: _Pages, live: bool) -> None:
    context = pages.context
    versions = "\n".join(f"- {k}: {v}" for k, v in context["versions"].items())
    est_versions = ", ".join(f"{k} v{v}" for k, v in sorted(context["estimator_versions"].items()))
    train, ev, orc = context["train_profile"], context["eval_profile"], context["oracle"]
    names = ["policies.md", "ablations.md", "sweeps.md", "calibration.md", "estimators.md"]
    names += ["live.md"] if live else []
    pages.write(
        "README.md",
        "hera-router evaluation report",
        [
            f"Generated {context['generated']} in {context['seconds']} s by:",
            f"```\n{context['command']}\n```",
            "Pages: " + ", ".join(f"[{p[:-3]}]({p})" for p in names) + "; data: [results.json](results.json).",
            f"Training profile: run `{train['run_id']}` ({train.get('n')} `{train.get('family')}` requests, "
            f"node budget {train.get('node_budget')}). Evaluation profile: run `{ev['run_id']}` "
            f"({ev['requests_used']} `{ev.get('family')}` requests from offset {ev.get('offset')}). "
            f"World seed {ev.get('world_seed')}, preset `{ev.get('preset')}`.",
            f"Estimators: {est_versions}. HybridLLM threshold {context['hybridllm']['threshold']:.3f}; Oracle plan "
            f"accuracy {100 * orc['accuracy']:.1f} % (target {100 * orc['target_accuracy']:.1f} %, "
            f"All-LLM {100 * orc['all_llm_accuracy']:.1f} %) at SLM usage {100 * orc['slm_usage']:.1f} %.",
            "Versions:\n" + versions,
        ],
    )


def write_report(
    out: Path,
    context: dict[str, Any],
    replayed: Replayed,
    estimator_rows: list[dict[str, Any]],
    live_rows: list[PolicyMetrics],
    agreement: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Every page, plot and ``results.json`` of the report; returns what ``results.json`` holds."""
    pages = _Pages(out, context, replayed, {row.name: row for row in replayed.table.rows})
    _plots(pages)
    _policies_page(pages)
    _ablations_page(pages)
    _sweeps_page(pages)
    _calibration_page(pages)
    _estimators_page(pages, estimator_rows)
    if live_rows:
        _live_page(pages, live_rows, agreement)
    _index_page(pages, bool(live_rows))
    summary = {
        **context,
        "policies": replayed.table.to_json(),
        "sweeps": {p: [pt.to_json() for pt in pts] for p, pts in replayed.sweep_points.items()},
        "reference_estimators": [row.to_json() for row in replayed.reference],
        "reference_sweeps": {p: [pt.to_json() for pt in pts] for p, pts in replayed.reference_sweeps.items()},
        "calibration": [c.to_json() for c in replayed.calibrations],
        "estimators": estimator_rows,
        "live": [row.to_json() for row in live_rows],
        "live_vs_replay": agreement,
    }
    write_results(out / "results.json", summary)
    return summary
