"""``hera-router eval ...``: replay, live runs, comparisons, sweeps, calibration, baselines, report.

Heavy imports (torch through the estimators, matplotlib, celery) stay inside the commands.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hera_router.backends.base import BackendConfigError
from hera_router.evaluation.render import LABEL, write_results

if TYPE_CHECKING:
    from hera_router.config import RoutingSettings, Settings
    from hera_router.db.runtime import Runtime
    from hera_router.evaluation.metrics import PolicyMetrics
    from hera_router.training.replay import ProfileSet, Replayer

eval_app = typer.Typer(
    help="Evaluate routing policies: replay on profiled trees, live runs, sweeps, calibration, reports.",
    no_args_is_help=True,
)

PROFILE_HELP = "Profile run id (default: the latest finished run)."


def _settings() -> Settings:
    from hera_router.cli.base import settings_or_exit

    return settings_or_exit()


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _runtime(settings: Settings) -> Runtime:
    from hera_router.cli.base import migrated_runtime

    return migrated_runtime(settings)


def _run_id(runtime: Runtime, value: str | None) -> uuid.UUID:
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope

    if value:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a profile run id (a UUID)", param_hint="--profile") from None
    with session_scope(runtime.sessions) as session:
        latest = ProfilingRepository(session).latest_run()
    if latest is None:
        raise _fail("no finished profile run; run `hera-router profile` first")
    return latest.id


def _label(profile: ProfileSet) -> str:
    return LABEL if profile.simulated else "profiled data"


@dataclass
class _Setup:
    settings: Settings
    runtime: Runtime
    profile: ProfileSet
    replayer: Replayer
    routing: RoutingSettings


def _replay_setup(profile_run: str | None, *, extend: bool, need_estimators: bool = True) -> _Setup:
    from hera_router.estimators.loader import RegistryEstimatorSource
    from hera_router.training.baselines import default_paths, with_baseline_paths
    from hera_router.training.replay import (
        Replayer,
        load_profile,
        no_latency,
        simulated_extension,
        simulated_latency,
    )

    settings = _settings()
    routing = with_baseline_paths(settings.routing, default_paths(settings))
    settings = settings.model_copy(update={"routing": routing})
    runtime = _runtime(settings)
    try:
        profile = load_profile(settings, runtime.sessions, _run_id(runtime, profile_run))
    except LookupError as exc:
        raise _fail(str(exc)) from None
    if not profile.trees:
        raise _fail(f"profile run {profile.run_id} holds no trees")
    estimators = RegistryEstimatorSource(runtime)() if need_estimators else None
    if need_estimators and estimators is None:
        typer.secho("no active estimators: hera and its ablations will be unavailable", err=True, fg="yellow")
    sim = profile.simulated and settings.edge.backend == "sim" and settings.cloud.backend == "sim"
    replayer = Replayer(
        profile,
        estimators,
        max_steps=routing.max_steps,
        latency=simulated_latency(settings) if sim else no_latency,
        extension=simulated_extension(settings) if extend and sim else None,
    )
    return _Setup(settings, runtime, profile, replayer, routing)


def _print_table(rows: list[PolicyMetrics], families: list[str], title: str) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    from hera_router.evaluation.compare import markdown_table

    console = Console()
    console.print(f"[bold]{title}[/]")
    console.print(Markdown(markdown_table(rows, families=families)))


def _write(out: Path | None, name: str, markdown: str, data: object, label: str) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    banner = f"> **{label}**: measured on the simulated world.\n\n" if label == LABEL else ""
    (out / f"{name}.md").write_text(f"# {name} ({label})\n\n{banner}{markdown}\n", encoding="utf-8")
    write_results(out / f"{name}.json", data)
    typer.echo(f"wrote {out / name}.md and .json")


EXTEND_HELP = "Run steps the profile lacks on the (simulated) backends instead of counting the request off-tree."


@eval_app.command("replay")
def replay_command(
    policies: list[str] = typer.Option([], "--policy", "-p", help="Policies (default: every policy and ablation)."),
    profile_run: str = typer.Option(None, "--profile", help=PROFILE_HELP),
    extend: bool = typer.Option(False, "--extend/--strict", help=EXTEND_HELP),
    out: Path = typer.Option(None, "--out", help="Folder for policies.md / policies.json."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the 95 % intervals."),
) -> None:
    """Replay policies on a profile run's trees (no model calls) and print the comparison table."""
    from hera_router.evaluation.compare import ABLATIONS, BASELINES, evaluate
    from hera_router.routing.registry import policy_names

    names = policies or list(dict.fromkeys([*BASELINES, *ABLATIONS]))
    unknown = [n for n in names if n not in policy_names()]
    if unknown:
        raise typer.BadParameter(f"unknown policy {unknown[0]!r}; known: {', '.join(policy_names())}", param_hint="-p")
    setup = _replay_setup(profile_run, extend=extend)
    all_llm = setup.profile.all_llm_costs()
    table = evaluate(setup.replayer, names, setup.routing, all_llm, resamples=resamples)
    rows = [row.metrics for row in table.rows]
    families = sorted({t.family for t in setup.profile.trees})
    label = _label(setup.profile)
    _print_table(rows, families, f"replay of profile run {setup.profile.run_id} ({label})")
    for row in table.rows:
        if row.error:
            typer.secho(f"{row.name}: {row.error}", fg="yellow")
    from hera_router.evaluation.compare import markdown_table

    _write(out, "policies", markdown_table(rows, families=families), table.to_json(), label)
    setup.runtime.close()


@eval_app.command("live")
def live_command(
    file: Path = typer.Argument(..., help="JSONL of `world generate` records (or API items with gold answers)."),
    policies: list[str] = typer.Option([], "--policy", "-p", help="Policies to run (default: the configured one)."),
    distributed: bool = typer.Option(False, "--distributed", help="Submit to the configured deployment's workers."),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Threads of the embedded worker."),
    timeout_s: float = typer.Option(1800, "--timeout", help="Seconds to wait for each policy's batch."),
    out: Path = typer.Option(None, "--out", help="Folder for live.md / live.json."),
) -> None:
    """Run FILE through the real pipeline once per policy and print the paper's metrics."""
    from hera_router.evaluation.compare import markdown_table
    from hera_router.evaluation.live import LiveItem, live_system, run_live
    from hera_router.evaluation.metrics import summarise
    from hera_router.training.baselines import default_paths, with_baseline_paths

    settings = _settings()
    settings = settings.model_copy(update={"routing": with_baseline_paths(settings.routing, default_paths(settings))})
    items = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        meta = row.get("metadata") or {}
        request = row.get("request") or row.get("input")
        if not request:
            raise typer.BadParameter(f"{file}, line {number}: expected 'request' or 'input'", param_hint="FILE")
        items.append(
            LiveItem(
                key=str(row.get("id") or row.get("custom_id") or f"line-{number}"),
                request=request,
                gold=row.get("gold", row.get("gold_answer")),
                metric=row.get("metric") or meta.get("metric"),
                family=str(row.get("family") or meta.get("family") or "all"),
            )
        )
        if isinstance(row.get("world_seed"), int) and row["world_seed"] != settings.simulator.seed:
            settings = settings.model_copy(
                update={"simulator": settings.simulator.model_copy(update={"seed": row["world_seed"]})}
            )
    names = policies or [settings.routing.policy]
    outcomes = {}
    with live_system(settings, distributed=distributed, concurrency=concurrency) as app:
        for name in names:
            outcomes[name] = run_live(app, items, name, timeout_s=timeout_s)
    # Cost is normalised to All-LLM when it ran; otherwise to each request's own cloud spend is meaningless.
    reference = {o.key: o.remote_cost_usd for o in outcomes.get("all-llm", [])}
    rows = [summarise(name, found, reference) for name, found in outcomes.items()]
    families = sorted({i.family for i in items})
    simulated = settings.edge.backend == "sim" or settings.cloud.backend == "sim"
    label = LABEL if simulated else "live"
    _print_table(rows, families, f"{file.name}: {len(items)} requests, live ({label})")
    if not reference:
        typer.echo("cost vs All-LLM needs an all-llm run: add `-p all-llm`")
    _write(out, "live", markdown_table(rows, families=families), [r.to_json() for r in rows], label)


@eval_app.command("sweep")
def sweep_command(
    profile_run: str = typer.Option(None, "--profile", help=PROFILE_HELP),
    extend: bool = typer.Option(False, "--extend/--strict", help=EXTEND_HELP),
    out: Path = typer.Option(Path("eval-sweeps"), "--out", help="Folder for the tables and PNG plots."),
) -> None:
    """Sweep τ_req and the subtask threshold base over the paper's grids; write tables and Pareto plots."""
    from hera_router.evaluation import plots, sweeps
    from hera_router.evaluation.compare import evaluate

    setup = _replay_setup(profile_run, extend=extend)
    all_llm = setup.profile.all_llm_costs()
    label = _label(setup.profile)
    refs = evaluate(setup.replayer, ["all-slm", "all-llm", "oracle"], setup.routing, all_llm, resamples=200)
    for parameter, grid in sweeps.SWEEPS.items():
        points = sweeps.sweep(setup.replayer, setup.routing, parameter, grid, all_llm)
        name = f"sweep-{parameter.replace('_', '-')}"
        _write(out, name, sweeps.markdown(points), [p.to_json() for p in points], label)
        references = [row.metrics for row in refs.rows if not row.error]
        plots.pareto_plot(points, references, out / f"{name}.png", data_label=label)
        typer.echo(sweeps.markdown(points))
    setup.runtime.close()


@eval_app.command("calibrate")
def calibrate_command(
    target_slm_share: float = typer.Option(None, "--target-slm-share", help="Wanted SLM usage, e.g. 0.7."),
    target_cost: float = typer.Option(None, "--target-cost", help="Wanted remote cost vs All-LLM, e.g. 0.3."),
    profile_run: str = typer.Option(None, "--profile", help=PROFILE_HELP),
    validation_fraction: float = typer.Option(0.5, "--validation-fraction", help="Share of requests to search on."),
    tolerance: float = typer.Option(0.03, "--tolerance", help="How close to the target counts as met."),
    extend: bool = typer.Option(False, "--extend/--strict", help=EXTEND_HELP),
) -> None:
    """Find τ_req and κ base meeting a target on validation requests; report held-out accuracy."""
    from hera_router.evaluation.calibrate import calibrate, split_keys

    if (target_slm_share is None) == (target_cost is None):
        raise typer.BadParameter("give exactly one of --target-slm-share and --target-cost")
    setup = _replay_setup(profile_run, extend=extend)
    validation, held_out = split_keys([t.key for t in setup.profile.trees], validation_fraction)
    result = calibrate(
        setup.replayer,
        setup.routing,
        setup.profile.all_llm_costs(),
        target="slm_share" if target_slm_share is not None else "cost",
        goal=target_slm_share if target_slm_share is not None else target_cost,
        validation=validation,
        held_out=held_out,
        tolerance=tolerance,
    )
    typer.echo(json.dumps(result.to_json(), indent=1))
    typer.echo(
        f"HERA_ROUTING__TAU_REQ={result.tau_req:.2f} HERA_ROUTING__KAPPA_BASE={result.kappa_base:.2f}"
        f"  ({'met' if result.met else 'NOT met'} on {len(validation)} validation requests; "
        f"held-out accuracy {100 * result.held_out.accuracy:.1f} % on {len(held_out)}) [{_label(setup.profile)}]"
    )
    setup.runtime.close()


@eval_app.command("fit-baselines")
def fit_baselines_command(
    train_profile: str = typer.Option(None, "--train-profile", help="Run to train HybridLLM on (default: latest)."),
    eval_profile: str = typer.Option(None, "--eval-profile", help="Run to search the Oracle on (default: latest)."),
    hybridllm_path: Path = typer.Option(None, "--hybridllm", help="Where to write the router (default: artifacts)."),
    oracle_path: Path = typer.Option(None, "--oracle", help="Where to write the plan (default: artifacts)."),
    max_quality_drop: float = typer.Option(0.05, "--max-quality-drop", help="HybridLLM threshold tuning target."),
) -> None:
    """Train the `hybridllm` router and search the `oracle` plan from profiled trees (profile_nodes)."""
    from hera_router.training.baselines import default_paths, fit_hybridllm, fit_oracle
    from hera_router.training.replay import load_profile

    settings = _settings()
    runtime = _runtime(settings)
    paths = default_paths(settings)
    hybrid_out = hybridllm_path or settings.routing.hybridllm_model_path or paths.hybridllm
    oracle_out = oracle_path or settings.routing.oracle_plan_path or paths.oracle
    try:
        train = load_profile(settings, runtime.sessions, _run_id(runtime, train_profile))
        evaluation = (
            train
            if eval_profile is None and train_profile is None
            else (load_profile(settings, runtime.sessions, _run_id(runtime, eval_profile)))
        )
        fit = fit_hybridllm(train, hybrid_out, max_quality_drop=max_quality_drop)
        plan = fit_oracle(evaluation, oracle_out)
    except (LookupError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"hybridllm: {fit.train_samples} training / {fit.validation_samples} validation subtasks, threshold "
        f"{fit.router.threshold:.3f}, relaxation {fit.router.relaxation:.2f} -> {hybrid_out}"
    )
    typer.echo(
        f"oracle: {len(plan.assignments)} requests, accuracy {plan.accuracy:.3f} (target {plan.target_accuracy:.3f}, "
        f"All-LLM {plan.all_llm_accuracy:.3f}), SLM usage {plan.slm_usage:.3f}, "
        f"{len(plan.skipped)} skipped -> {oracle_out}"
    )
    typer.echo(
        f"export HERA_ROUTING__HYBRIDLLM_MODEL_PATH={hybrid_out.resolve()} "
        f"HERA_ROUTING__ORACLE_PLAN_PATH={oracle_out.resolve()}  # for `run`, `submit` and workers"
    )
    runtime.close()


@eval_app.command("report")
def report_command(
    out: Path = typer.Option(Path("reports/default-sim"), "--out", help="Report folder."),
    workdir: Path = typer.Option(Path(".hera/eval-report"), "--workdir", help="Database and state to reuse."),
    train_family: str = typer.Option("lookup", "--train-family", help="Family the estimators are trained on."),
    eval_family: str = typer.Option("mixed", "--eval-family", help="Family (or mixed) evaluated on."),
    train_n: int = typer.Option(80, "--train-n", help="Training requests to profile."),
    eval_n: int = typer.Option(60, "--eval-n", help="Evaluation requests to profile."),
    budget: int = typer.Option(64, "--budget", help="Step nodes per profiled tree."),
    live_n: int = typer.Option(16, "--live-n", help="Evaluation requests also run live (0: none)."),
    target_slm_share: float = typer.Option(0.7, "--target-slm-share", help="Calibration target."),
    target_cost: float = typer.Option(0.3, "--target-cost", help="Calibration target (All-LLM = 1.0)."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    retrain: bool = typer.Option(False, "--retrain", help="Train new estimators even if the work folder has them."),
) -> None:
    """Profile, train, replay every policy and ablation, sweep, calibrate, run live; write a report folder."""
    from hera_router.config import load_settings
    from hera_router.evaluation.render import command_line
    from hera_router.evaluation.report import ReportConfig, build_report

    base = _settings()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # The work folder is self-contained: its own SQLite database and artifacts.
    settings = load_settings(
        **{
            **base.model_dump(exclude={"database_url", "data_dir", "artifact_dir"}),
            "data_dir": workdir,
            "database_url": f"sqlite:///{workdir / 'eval.sqlite3'}",
        }
    )
    config = ReportConfig(
        out=out,
        workdir=workdir,
        train_family=train_family,
        eval_family=eval_family,
        train_n=train_n,
        eval_n=eval_n,
        node_budget=budget,
        live_n=live_n,
        target_slm_share=target_slm_share,
        target_cost=target_cost,
        resamples=resamples,
        retrain=retrain,
        command=command_line(),
    )
    try:
        result = build_report(settings, config, log=typer.echo)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"report written to {result.out} in {result.seconds:.0f} s (SIMULATED)")


@eval_app.command("matrix")
def matrix_command(
    worlds: list[str] = typer.Option(
        [], "--worlds", "-w", help="Simulator presets (default: default, strong-slm, weak-slm, weak-logprob)."
    ),
    seeds: list[int] = typer.Option([], "--seeds", "-s", help="World seeds (default: 0 and 1)."),
    train_n: int = typer.Option(120, "--train-n", help="Training requests bootstrap profiles per world."),
    eval_n: int = typer.Option(60, "--eval-n", help="Evaluation requests (every family) per world."),
    train_family: str = typer.Option("lookup", "--train-family", help="Family the estimators are trained on."),
    eval_family: str = typer.Option("mixed", "--eval-family", help="Family (or mixed) evaluated on."),
    budget: int = typer.Option(64, "--budget", help="Step nodes per profiled tree."),
    policies: list[str] = typer.Option([], "--policy", "-p", help="Only these policies (default: every registered)."),
    workdir: Path = typer.Option(Path(".hera/eval-matrix"), "--workdir", help="Databases and state to reuse."),
    out: Path = typer.Option(Path("reports/matrix"), "--out", help="Folder for README.md, results.json, PNGs."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    retrain: bool = typer.Option(False, "--retrain", help="Bootstrap again even if a world's folder has estimators."),
    recalibrate: bool = typer.Option(
        False, "--recalibrate", help="Reusing a world's bootstrap, fit its calibration again (thresholds only)."
    ),
) -> None:
    """Every registered policy on several simulated worlds: a table per world, the mean, and HERA vs
    HybridLLM and Random at HERA's SLM share (SIMULATED)."""
    from hera_router.evaluation.matrix import build_matrix, console_table
    from hera_router.evaluation.render import command_line
    from hera_router.evaluation.world_replay import DEFAULT_SEEDS, DEFAULT_WORLDS, WorldConfig
    from hera_router.evaluation.worlds import RichProgress
    from hera_router.simulator.presets import PresetError

    config = WorldConfig(
        out=out,
        workdir=workdir.resolve(),
        worlds=worlds or DEFAULT_WORLDS,
        seeds=seeds or DEFAULT_SEEDS,
        train_family=train_family,
        eval_family=eval_family,
        train_n=train_n,
        eval_n=eval_n,
        node_budget=budget,
        resamples=resamples,
        policies=policies,
        retrain=retrain,
        recalibrate=recalibrate,
        command=command_line(),
    )
    progress = RichProgress()
    try:
        result = build_matrix(_settings(), config, progress)
    except (ValueError, PresetError) as exc:
        raise _fail(str(exc)) from None
    from rich.console import Console

    console = Console()
    for world in result.worlds:
        console.print(
            console_table(
                world.name, [m.to_json() | {"decision_ms": world.decision_ms.get(m.policy)} for m in world.rows]
            )
        )
    console.print(console_table(f"mean over {len(result.worlds)} worlds", result.mean_rows))
    typer.echo(f"matrix written to {result.out} (README.md, results.json, PNGs) in {result.seconds:.0f} s (SIMULATED)")


@eval_app.command("real-edge")
def real_edge_command(
    seed: int = typer.Option(0, "--seed", "-s", help="World seed of the facts requests."),
    train_n: int = typer.Option(60, "--train-n", help="Requests bootstrap profiles (real SLM, simulated LLM)."),
    eval_n: int = typer.Option(100, "--eval-n", help="Held-out evaluation requests."),
    urc_requests: int = typer.Option(60, "--urc-requests", help="Extra requests bootstrap profiles for URC."),
    calibration_requests: int = typer.Option(60, "--calibration-requests", help="Extra requests to calibrate on."),
    budget: int = typer.Option(32, "--budget", help="Step nodes per profiled tree."),
    samples: int = typer.Option(3, "--samples", help="Sampled answers per step for the agreement signal."),
    sample_steps: int = typer.Option(60, "--sample-steps", help="Steps that get sampled answers."),
    policies: list[str] = typer.Option([], "--policy", "-p", help="Only these policies (default: the seven compared)."),
    workdir: Path = typer.Option(Path(".hera/eval-real-edge"), "--workdir", help="Databases and state to reuse."),
    out: Path = typer.Option(Path("reports/real-edge"), "--out", help="Folder for README.md, results.json."),
    skip_sim: bool = typer.Option(False, "--skip-sim", help="Leave out the fitted simulator's table."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
) -> None:
    """The real SmolLM2-135M-Instruct as the edge model on grounded lookups, the cloud simulated:
    per-step accuracy, latency and signal AUCs, every policy, and the simulator fitted to it
    (REAL EDGE MODEL / SIMULATED CLOUD)."""
    from hera_router.evaluation.matrix import console_table
    from hera_router.evaluation.real_edge import POLICIES, RealEdgeConfig, run_real_edge
    from hera_router.evaluation.render import command_line
    from hera_router.evaluation.worlds import RichProgress

    config = RealEdgeConfig(
        out=out,
        workdir=workdir.resolve(),
        seed=seed,
        train_n=train_n,
        eval_n=eval_n,
        urc_requests=urc_requests,
        calibration_requests=calibration_requests,
        node_budget=budget,
        samples=samples,
        sample_steps=sample_steps,
        resamples=resamples,
        policies=policies or POLICIES,
        command=command_line(),
        skip_sim=skip_sim,
    )
    try:
        result = run_real_edge(_settings(), config, RichProgress())
    except (ValueError, BackendConfigError) as exc:
        raise _fail(str(exc)) from None
    from rich.console import Console

    console = Console()
    for label, world in (("real edge / simulated cloud", result.real), ("fitted simulator", result.simulated)):
        if world is not None:
            rows = [m.to_json() | {"decision_ms": world.decision_ms.get(m.policy)} for m in world.rows]
            console.print(console_table(label, rows))
    typer.echo(f"real-edge evaluation written to {out} (README.md, results.json)")


@eval_app.command("graphs")
def graphs_command(
    worlds: list[str] = typer.Option(
        [], "--worlds", "-w", help="Simulator presets (default: default, strong-slm, weak-slm, weak-logprob)."
    ),
    seeds: list[int] = typer.Option([], "--seeds", "-s", help="World seeds (default: 0 and 1)."),
    train_n: int = typer.Option(
        120, "--train-n", help="Training requests bootstrap profiles per world (as the matrix)."
    ),
    graph_n: int = typer.Option(80, "--graph-n", help="Graph requests per world."),
    chain_n: int = typer.Option(60, "--chain-n", help="Chains (the matrix's mixed evaluation requests) per world."),
    kappa_policies: list[str] = typer.Option(
        [], "--kappa-policy", help="Policies whose κ modes are swept (default: hera)."
    ),
    grid: list[float] = typer.Option([], "--kappa-base", help="κ base values swept (default: 0.0, 0.1, … 0.9)."),
    workdir: Path = typer.Option(Path(".hera/eval-matrix"), "--workdir", help="The matrix's world folders (reused)."),
    out: Path = typer.Option(Path("reports/issue19-graphs"), "--out", help="Folder for README.md and results.json."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
) -> None:
    """Graph requests replayed offline under each κ mode (a κ-base sweep, compared at equal SLM share)
    and partial SD against all-or-nothing, on graphs and chains, per world (SIMULATED)."""
    from hera_router.evaluation.graphs import KAPPA_GRID, GraphsConfig, build_graphs
    from hera_router.evaluation.render import command_line
    from hera_router.evaluation.world_replay import DEFAULT_SEEDS, DEFAULT_WORLDS
    from hera_router.evaluation.worlds import RichProgress
    from hera_router.simulator.presets import PresetError

    config = GraphsConfig(
        out=out,
        workdir=workdir.resolve(),
        worlds=worlds or DEFAULT_WORLDS,
        seeds=seeds or DEFAULT_SEEDS,
        train_n=train_n,
        graph_n=graph_n,
        chain_n=chain_n,
        kappa_policies=kappa_policies or ("hera",),
        grid=tuple(grid) or KAPPA_GRID,
        resamples=resamples,
        command=command_line(),
    )
    try:
        result = build_graphs(_settings(), config, RichProgress())
    except (ValueError, PresetError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"graphs report written to {out} (README.md, results.json) in {result.seconds:.0f} s (SIMULATED)")


@eval_app.command("ladder")
def ladder_command(
    world: list[str] = typer.Option(["default"], "--world", "-w", help="Simulator preset(s) to evaluate."),
    seed: list[int] = typer.Option([0], "--seed", help="World seed(s)."),
    requests: int = typer.Option(150, "--requests", "-n", min=10, help="Requests evaluated per world."),
    profile_requests: int = typer.Option(100, "--profile", min=10, help="Requests profiled per world (disjoint)."),
    scenario: list[str] = typer.Option(
        ["rented-edge", "owned-edge"], "--scenario", help="Price scenario(s): rented-edge, owned-edge."
    ),
    encoder: str = typer.Option(
        "hashed-ngrams-512", "--encoder", help="Start estimators' features: hashed-ngrams-N, all-minilm-l6-v2."
    ),
    out: Path = typer.Option(Path("reports/ladder"), "--out", "-o", help="Folder for ladder.md/.json and plots."),
    save_starts: bool = typer.Option(
        True,
        "--save-starts/--no-save-starts",
        help="Also save each world's start estimators (fitted at the reference δ) as starts-*.json in --out, "
        "the file HERA_ROUTING__LADDER_ESTIMATORS loads.",
    ),
) -> None:
    """SIMULATED: the N-model ladder (tiny, mid, cheap-cloud, cloud) against two-model HERA, each
    model alone, every fixed pair, Random and HybridLLM over the ladder, on full and paper cost."""
    import shlex
    import sys
    import time

    from hera_router.evaluation.ladder import SCENARIOS, describe, evaluate_world, write_report

    unknown = [name for name in scenario if name not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(
            f"unknown scenario {unknown[0]!r}; use {', '.join(SCENARIOS)}", param_hint="--scenario"
        )
    reports = []
    began = time.perf_counter()
    for name, preset, world_seed in ((n, p, s) for n in scenario for p in world for s in seed):
        typer.echo(
            f"{name}: {preset} / seed {world_seed}: profiling {profile_requests}, evaluating {requests} ...",
            err=True,
        )
        report = evaluate_world(
            preset,
            world_seed,
            requests=requests,
            profile_requests=profile_requests,
            tiers=SCENARIOS[name],
            encoder=encoder,
        )
        report.preset = f"{preset} [{name}]"
        reports.append(report)
        h = report.headline
        typer.echo(f"  SIMULATED {report.preset}: cost order {h['cost_order']}; best fixed pair {h['best_fixed_pair']}")
        for variant, values in h.items():
            if isinstance(values, dict) and "meets_cost_target" in values:
                typer.echo(f"    {variant}: {describe(values)}")
    seconds, cpu = time.perf_counter() - began, time.process_time()
    command = "hera-router " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    note = f"Made with `{command}` in {seconds:.0f} s ({cpu:.0f} s of CPU in this process)."
    path = write_report(reports, out, note)
    if save_starts:
        from hera_router.training.ladder import save_starts as save

        for report in reports:
            if report.starts:
                typer.echo(f"  start estimators: {save(report.starts, out, report.preset, report.seed)}", err=True)
    typer.echo(f"wrote {path} in {seconds:.0f} s (SIMULATED)")
