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

import json
import math
import platform
import sys
import time
import uuid
from collections.abc import Callable
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
from hera_router.training.baselines import BaselinePaths, fit_hybridllm, fit_oracle, with_baseline_paths
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


def _state(workdir: Path) -> dict[str, Any]:
    path = workdir / "state.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    (workdir / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")


def _profile(
    runtime: Runtime,
    state: dict[str, Any],
    label: str,
    family: str,
    n: int,
    offset: int,
    budget: int,
    log: Log,
    on_request: Callable[[int, int], None] | None = None,
) -> uuid.UUID:
    """The run for (family, n, offset, budget): reused when the work folder already finished it."""
    from hera_router.db.enums import RunStatus
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.training.profiling import create_run, profile_run, run_config

    settings = runtime.settings
    config = run_config(settings, family=family, n=n, offset=offset, node_budget=budget)
    previous = state.get(label)
    if previous and previous.get("config") == config:
        with session_scope(runtime.sessions) as session:
            run = ProfilingRepository(session).get_run(uuid.UUID(previous["run_id"]))
            done = run is not None and run.status is RunStatus.SUCCEEDED
        if done:
            log(f"reusing {label} profile run {previous['run_id']}")
            return uuid.UUID(previous["run_id"])
    run_id = create_run(runtime.sessions, f"eval-{label}", "sim", config)
    started = time.perf_counter()
    profile_run(settings, runtime.sessions, run_id, on_request=on_request or _every_tenth(label, log))
    log(f"profiled {label}: {n} {family} requests (offset {offset}) in {time.perf_counter() - started:.0f} s")
    state[label] = {"run_id": str(run_id), "config": config}
    return run_id


def _every_tenth(label: str, log: Log) -> Callable[[int, int], None]:
    """A profiling callback that logs about ten lines per run (so a long profile is not silent)."""

    def report(done: int, total: int) -> None:
        if total and (done == total or done % max(1, total // 10) == 0):
            log(f"profiling {label}: {done}/{total} requests")

    return report


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
            rows.append({
                "name": row.name, "version": row.version, "variant": row.metrics.get("variant"),
                "metric": metric, "value": value, "baseline": baseline,
            })  # fmt: skip
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
    label = "SIMULATED"
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = _state(config.workdir)
    try:
        train_run = _profile(runtime, state, "train", config.train_family, config.train_n, 0, config.node_budget, log)
        _save_state(config.workdir, state)
        # Offsetting by train_n keeps the evaluation requests of the training family disjoint from
        # the training ones (instance i of a family is the same request in every set).
        eval_run = _profile(
            runtime, state, "eval", config.eval_family, config.eval_n, config.train_n, config.node_budget, log
        )
        _save_state(config.workdir, state)
        estimator_rows = _train(runtime, state, train_run, config.retrain, log)
        _save_state(config.workdir, state)

        train_profile = load_profile(settings, runtime.sessions, train_run)
        profile = load_profile(settings, runtime.sessions, eval_run)
        train_requests = {t.request for t in train_profile.trees}
        overlap = [t.key for t in profile.trees if t.request in train_requests]
        if overlap:
            log(f"leaving out {len(overlap)} evaluation requests that also appear in the training profile")
            profile = profile.subset([t.key for t in profile.trees if t.request not in train_requests])
        paths = BaselinePaths(config.workdir / "hybridllm.json", config.workdir / "oracle-plan.json")
        hybrid = fit_hybridllm(train_profile, paths.hybridllm)
        oracle_result = fit_oracle(profile, paths.oracle)
        log(
            f"hybridllm: threshold {hybrid.router.threshold:.3f} on {hybrid.train_samples} subtasks; oracle: "
            f"accuracy {oracle_result.accuracy:.3f} at SLM usage {oracle_result.slm_usage:.3f}"
        )
        routing = with_baseline_paths(settings.routing, paths)
        settings = settings.model_copy(update={"routing": routing})
        runtime.settings = settings
        estimators = RegistryEstimatorSource(runtime)()
        if estimators is None:
            raise RuntimeError("no active estimators after training")
        replayed = _replay_all(settings, profile, estimators, config, log)
        families = sorted({t.family for t in profile.trees})
        log(f"sweeps and calibration done at {time.perf_counter() - started:.0f} s")
        live_rows, agreement = _live(settings, profile, replayed.table, config, log)
    finally:
        _save_state(config.workdir, state)
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
        "oracle": {"accuracy": oracle_result.accuracy, "slm_usage": oracle_result.slm_usage,
                   "target_accuracy": oracle_result.target_accuracy,
                   "all_llm_accuracy": oracle_result.all_llm_accuracy},
    }  # fmt: skip
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
            replayer, routing, all_llm, target="slm_share", goal=config.target_slm_share,
            validation=validation, held_out=held_out, resamples=config.resamples,
        ),
        calibration.calibrate(
            replayer, routing, all_llm, target="cost", goal=config.target_cost,
            validation=validation, held_out=held_out, resamples=config.resamples,
        ),
    ]  # fmt: skip
    from hera_router.estimators.similarity import shared_embedder
    from hera_router.evaluation.reference_estimators import profiled_estimators

    embedder = shared_embedder(settings.estimators.similarity_cache_size)
    reference_bundle = profiled_estimators(profile, embedder.embed, int(embedder.embed("dimension").shape[0]))
    reference_replayer = Replayer(
        profile, reference_bundle, max_steps=routing.max_steps, latency=simulated_latency(settings),
        extension=replayer.extension,
    )  # fmt: skip
    reference_table = compare.evaluate(
        reference_replayer, compare.ABLATIONS, routing, all_llm, resamples=config.resamples
    )
    reference = [replace(row.metrics, policy=f"{row.name} (profiled estimators)") for row in reference_table.rows]
    reference_sweeps = {
        parameter: sweeps.sweep(reference_replayer, routing, parameter, grid, all_llm, resamples=config.resamples)
        for parameter, grid in sweeps.SWEEPS.items()
    }
    return Replayed(
        table, sweep_points, calibrations, replayer.extension.steps if replayer.extension is not None else 0,
        reference, reference_sweeps,
    )  # fmt: skip


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


def _banner(label: str) -> str:
    return (
        f"> **{label}.** Every number on this page was measured on the simulated agent world "
        "(`hera_router/simulator`), not on real models or real tasks.\n"
    )


def _page(out: Path, name: str, title: str, label: str, body: str) -> None:
    (out / name).write_text(f"# {title} ({label})\n\n{_banner(label)}\n{body.rstrip()}\n", encoding="utf-8")


def write_report(
    out: Path,
    context: dict[str, Any],
    replayed: Replayed,
    estimator_rows: list[dict[str, Any]],
    live_rows: list[PolicyMetrics],
    agreement: dict[str, dict[str, int]],
) -> dict[str, Any]:
    label = context["label"]
    families = context["families"]
    table, sweep_points, calibrations = replayed.table, replayed.sweep_points, replayed.calibrations
    reference_hera = [r for r in replayed.reference if r.policy.startswith("hera (")]
    held_out = [f for f in families if f != context["train_family"]]
    by_name = {row.name: row for row in table.rows}
    policy_rows = [by_name[n].metrics for n in compare.BASELINES if n in by_name]
    ablation_rows = [by_name[n].metrics for n in compare.ABLATIONS if n in by_name]
    references = [by_name[n].metrics for n in ("all-slm", "all-llm", "oracle", "hybridllm") if n in by_name]

    for parameter, points in sweep_points.items():
        more = {"hera with profiled estimators": replayed.reference_sweeps.get(parameter, [])}
        path = out / f"sweep-{parameter.replace('_', '-')}.png"
        plots.pareto_plot(points, references, path, data_label=label, more=more)
    plots.policies_plot(policy_rows + ablation_rows[1:] + reference_hera, out / "policies.png", data_label=label)

    errors = "\n".join(f"- `{row.name}`: {row.error}" for row in table.rows if row.error)
    replay_note = (
        f"Replay on the evaluation profile ({context['eval_profile']['requests_used']} requests, "
        f"families {', '.join(families)}; `{context['train_family']}` is the estimators' training family, "
        f"{', '.join(held_out) or 'none'} held out). Steps the profile lacked were run on the simulated "
        f"backends and added to the trees ({context['extension_steps']} steps in all); `off-tree` counts "
        "requests that could not be finished. 95 % intervals: bootstrap over requests (1000 resamples). "
        "Latency: the simulator's latency model on each step's tokens plus measured decision time."
    )
    _page(out, "policies.md", "Policies", label, "\n\n".join([
        replay_note,
        compare.markdown_table(policy_rows, families=families),
        "Steps per HERA branch:",
        compare.branch_table(ablation_rows + replayed.reference),
        "Replay could not evaluate:\n" + errors if errors else "",
        "![policies](policies.png)",
    ]))  # fmt: skip
    _page(out, "ablations.md", "Ablations (the paper's Table 4 rows first)", label, "\n\n".join([
        replay_note,
        compare.markdown_table(ablation_rows, families=families, latency=False),
        "The same rows with the profiled estimators (read off the evaluation trees: what the routing logic "
        "does with perfect predictors; `evaluation/reference_estimators.py`):",
        compare.markdown_table(replayed.reference, families=families, latency=False),
        "Paper Table 4 (macro, real models): AIMS 77.62 / 83.58; w/o SD 76.04 / 78.04; URC+SSE+SLE 73.90 / 75.52; "
        "URC+SSE 72.48 / 72.36; URC only 70.10 / 71.98; w/o URC 76.82 / 70.18 (accuracy / SLM usage %).",
    ]))  # fmt: skip
    sweep_body = []
    for parameter, points in sweep_points.items():
        sweep_body += [f"## {plots.LABELS.get(parameter, parameter)}", "Trained estimators:", sweeps.markdown(points),
                       "Profiled (perfect) estimators:", sweeps.markdown(replayed.reference_sweeps.get(parameter, [])),
                       f"![{parameter}](sweep-{parameter.replace('_', '-')}.png)"]  # fmt: skip
    sweep_body.append(
        "Paper Fig. 12 (real models): τ_req 0.50→0.78 raises accuracy 74.25→77.90 % and lowers SLM usage "
        "88.40→76.30 %; τ_sse 0.60→0.80 raises accuracy 75.10→77.65 % and lowers SLM usage 86.20→78.55 %."
    )
    _page(out, "sweeps.md", "Threshold sweeps", label, "\n\n".join(sweep_body))
    cal_lines = [
        "| target | goal | τ_req | κ base | met on validation | validation value | held-out value | "
        "held-out accuracy % [95% CI] | held-out SLM usage % | held-out cost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in calibrations:
        v, h = c.validation, c.held_out

        def fmt(x: float, share: bool = c.target == "slm_share") -> str:
            return f"{100 * x:.1f} %" if share else f"{x:.2f}"

        cal_lines.append(
            f"| {c.target} | {fmt(c.goal)} | {c.tau_req:.2f} | {c.kappa_base:.2f} | {'yes' if c.met else 'no'} | "
            f"{fmt(c.achieved(v))} | {fmt(c.achieved(h))} | {compare.pct_ci(h.accuracy, h.accuracy_ci)} | "
            f"{compare.pct(h.slm_usage)} | {h.cost:.2f} |"
        )
    _page(out, "calibration.md", "Calibration", label, "\n\n".join([
        "Thresholds searched on the validation half of the evaluation requests (a hash split), "
        f"reported on the other half; tolerance ±{100 * calibrations[0].tolerance:.0f} points "
        "(or ±0.03 cost ratio); among the pairs within tolerance the most accurate on validation wins.",
        "\n".join(cal_lines),
    ]))  # fmt: skip
    est_lines = ["| estimator | version | variant | metric | value | baseline |", "|---|---|---|---|---|---|"]
    est_lines += [
        f"| {r['name']} | {r['version']} | {r['variant']} | {r['metric']} | {r['value']:.3f} | {r['baseline']:.3f} |"
        for r in estimator_rows
    ]
    effect = [by_name[n].metrics for n in ("hera", "hera-no-urc", "hera-urc-only", "hera-fixed-kappa") if n in by_name]
    effect += [r for r in replayed.reference if r.policy.split(" ")[0] in ("hera", "hera-no-urc", "hera-urc-only")]
    effect += [by_name[n].metrics for n in ("all-slm", "all-llm", "oracle") if n in by_name]
    _page(out, "estimators.md", "Estimators", label, "\n\n".join([
        "Validation metrics of the estimators trained on the training profile, against each one's trivial "
        "baseline (training/evaluation.py):",
        "\n".join(est_lines),
        "Their effect end to end (replay): HERA with every stage, without URC, with URC only, and without "
        "the position-aware κ; then the same policies with the profiled (perfect) estimators, and the references:",
        compare.markdown_table(effect, families=families, latency=False),
    ]))  # fmt: skip
    if live_rows:
        agree_lines = ["| policy | compared | same decisions | same answer |", "|---|---|---|---|"]
        agree_lines += [f"| `{n}` | {a['compared']} | {a['same_decisions']} | {a['same_answer']} |"
                        for n, a in agreement.items()]  # fmt: skip
        _page(out, "live.md", "Live runs through the embedded pipeline", label, "\n\n".join([
            f"{live_rows[0].requests} evaluation requests (alternating families), run through the real pipeline "
            "(SQLite, in-process Celery workers, simulated backends; HERA with the registry's active estimators). "
            "Latency: the simulated latency each call reported plus the router's recorded decision time.",
            compare.markdown_table(live_rows, families=families),
            "Live against replay on the same requests (decisions = executor and branch of every step):",
            "\n".join(agree_lines),
        ]))  # fmt: skip
    versions = "\n".join(f"- {k}: {v}" for k, v in context["versions"].items())
    est_versions = ", ".join(f"{k} v{v}" for k, v in sorted(context["estimator_versions"].items()))
    train, ev, orc = context["train_profile"], context["eval_profile"], context["oracle"]
    pages = ["policies.md", "ablations.md", "sweeps.md", "calibration.md", "estimators.md"]
    pages += ["live.md"] if live_rows else []
    _page(out, "README.md", "hera-router evaluation report", label, "\n\n".join([
        f"Generated {context['generated']} in {context['seconds']} s by:",
        f"```\n{context['command']}\n```",
        "Pages: " + ", ".join(f"[{p[:-3]}]({p})" for p in pages) + "; data: [results.json](results.json).",
        f"Training profile: run `{train['run_id']}` ({train.get('n')} `{train.get('family')}` requests, "
        f"node budget {train.get('node_budget')}). Evaluation profile: run `{ev['run_id']}` "
        f"({ev['requests_used']} `{ev.get('family')}` requests from offset {ev.get('offset')}). "
        f"World seed {ev.get('world_seed')}, preset `{ev.get('preset')}`.",
        f"Estimators: {est_versions}. HybridLLM threshold {context['hybridllm']['threshold']:.3f}; Oracle plan "
        f"accuracy {100 * orc['accuracy']:.1f} % (target {100 * orc['target_accuracy']:.1f} %, "
        f"All-LLM {100 * orc['all_llm_accuracy']:.1f} %) at SLM usage {100 * orc['slm_usage']:.1f} %.",
        "Versions:\n" + versions,
    ]))  # fmt: skip
    summary = {
        **context,
        "policies": table.to_json(),
        "sweeps": {p: [pt.to_json() for pt in pts] for p, pts in sweep_points.items()},
        "reference_estimators": [row.to_json() for row in replayed.reference],
        "reference_sweeps": {p: [pt.to_json() for pt in pts] for p, pts in replayed.reference_sweeps.items()},
        "calibration": [c.to_json() for c in calibrations],
        "estimators": estimator_rows,
        "live": [row.to_json() for row in live_rows],
        "live_vs_replay": agreement,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=_json_default), encoding="utf-8")
    return summary


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def command_line() -> str:
    import shlex

    return " ".join(shlex.quote(arg) for arg in ["hera-router", *sys.argv[1:]])
