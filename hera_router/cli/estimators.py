"""Estimators and continual fine-tuning: ``profile``, ``train``, ``promote``, ``estimators``,
``evaluate-estimator``, ``bootstrap``, ``retrain``, ``runs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import (
    app,
    bootstrap_with_progress,
    checked_runtime,
    is_simulated,
    migrated_runtime,
    parse_run_id,
    settings_or_exit,
)

if TYPE_CHECKING:
    from datetime import datetime as datetime_type

    from hera_router.db.runtime import Runtime


@app.command("profile")
def profile(
    family: str = typer.Option(None, "--family", help="Simulated task family: lookup, arithmetic or mixed."),
    n: int = typer.Option(None, "--n", help="Requests to profile (default HERA_ESTIMATORS__PROFILE_REQUESTS)."),
    offset: int = typer.Option(0, "--offset", help="Skip the first OFFSET requests of the family (held-out sets)."),
    file: Path = typer.Option(None, "--file", help="JSONL of requests to profile instead of simulated ones."),
    name: str = typer.Option("profile", "--name", help="A label for the run."),
    budget: int = typer.Option(None, "--budget", help="Step nodes per request tree (HERA_ESTIMATORS__NODE_BUDGET)."),
    resume: str = typer.Option(None, "--resume", help="Continue an interrupted run (its id)."),
    queue: bool = typer.Option(False, "--queue", help="Send the run to the training queue instead of running here."),
) -> None:
    """Profile requests into SLM/LLM trees (the estimators' training data); prints the run id."""
    from rich.progress import Progress

    from hera_router.training.profiling import create_run, profile_run, run_config

    settings = settings_or_exit()
    runtime = migrated_runtime(settings)
    if resume:
        run_id = parse_run_id(resume)
    else:
        source = "sim" if file is None and is_simulated(settings) else "real"
        config = run_config(settings, family=family, n=n, offset=offset, file=file, node_budget=budget)
        run_id = create_run(runtime.sessions, name, source, config)
    if queue:
        from hera_router.pipeline.names import TaskName
        from hera_router.workers import create_app

        create_app(settings).send_task(TaskName.PROFILE, kwargs={"run_id": str(run_id)})
        typer.echo(f"profile run {run_id} queued on the training queue")
        return
    with Progress() as bar:
        task = bar.add_task(f"profiling {run_id}", total=None)
        count = profile_run(
            settings,
            runtime.sessions,
            run_id,
            on_request=lambda done, total: bar.update(task, completed=done, total=total),
        )
    simulated = " (simulated)" if is_simulated(settings) and file is None else ""
    typer.echo(f"profile run {run_id}: {count} requests{simulated}")
    runtime.close()


@app.command("train")
def train(
    name: str = typer.Argument(..., help="Estimator: urc, sp_slm, sp_llm, dp or sd."),
    profile_run_id: str = typer.Option(None, "--profile", help="Profile run id (default: the latest finished)."),
    variant: str = typer.Option(None, "--variant", help="SP: embedding|generative; SD: prompted|trained."),
    promote_after: bool = typer.Option(False, "--promote", help="Make the new version active at once."),
) -> None:
    """Train one estimator on a profile run, validate it and register it as a candidate version."""
    from hera_router.db.repositories import EstimatorVersionRepository, ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES
    from hera_router.training.evaluation import headline
    from hera_router.training.trainers import train_estimator

    if name not in ESTIMATOR_NAMES:
        raise typer.BadParameter(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATOR_NAMES)}")
    settings = settings_or_exit()
    runtime = migrated_runtime(settings)
    if profile_run_id:
        run_id = parse_run_id(profile_run_id)
    else:
        with session_scope(runtime.sessions) as session:
            latest = ProfilingRepository(session).latest_run()
        if latest is None:
            typer.secho("no finished profile run; run `hera-router profile` first", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2)
        run_id = latest.id
    try:
        result = train_estimator(runtime, name, run_id, variant=variant, progress=typer.echo)
    except (ValueError, LookupError) as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    if result is None:
        typer.echo(f"a training run of {name} for this time is already recorded; nothing to do")
        return
    metric, value, baseline = headline(result.metrics)
    typer.echo(
        f"{name} v{result.version} ({result.variant}) at {result.path}: {metric} {value:.3f} (baseline {baseline:.3f})"
    )
    if promote_after:
        with session_scope(runtime.sessions) as session:
            EstimatorVersionRepository(session).promote(name, result.version)
        typer.echo(f"{name} v{result.version} is active")
    runtime.close()


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Estimator name (or `calibration`)."),
    version: int = typer.Argument(..., help="Version to make active (a retired one rolls back)."),
    recalibrate: bool = typer.Option(
        True, help="Re-fit the thresholds for the new set of versions (or re-activate the calibration fitted for it)."
    ),
) -> None:
    """Make VERSION the active version of NAME; routers pick it up within the reload interval.

    The thresholds belong to a set of versions: after promoting an estimator, the calibration fitted
    for the new set is re-activated if one exists (a rollback), else the set is calibrated again on
    the profile the active calibration used.
    """
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import CALIBRATION

    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            EstimatorVersionRepository(session).promote(name, version)
    except LookupError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    typer.echo(f"{name} v{version} is active; routers load it within {settings.estimators.reload_interval_s:g} s")
    if name != CALIBRATION and recalibrate:
        _recalibrate(runtime)
    runtime.close()


def _recalibrate(runtime: Runtime) -> None:
    """Activate the calibration fitted for the active versions, or fit one (``promote``)."""
    from hera_router.training.calibration import recalibrate

    typer.echo(recalibrate(runtime, progress=typer.echo))


@app.command("estimators")
def estimators_list() -> None:
    """List every estimator version with its status, backbone and headline validation metric, and
    the mode ``hera`` routes in (trained, or cold start with the threshold in force)."""
    from rich.console import Console
    from rich.table import Table

    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES
    from hera_router.training.coldstart import mode_line
    from hera_router.training.evaluation import headline

    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    table = Table("name", "version", "status", "variant", "backbone", "metric", "value", "baseline")
    with session_scope(runtime.sessions) as session:
        for row in EstimatorVersionRepository(session).list_all():
            metric, value, baseline = headline(row.metrics) if "metric" in row.metrics else ("-", 0.0, 0.0)
            table.add_row(
                row.name,
                str(row.version),
                row.status.value,
                str(row.metrics.get("variant", "-")),
                row.backbone or "-",
                metric,
                f"{value:.3f}",
                f"{baseline:.3f}",
            )
    console = Console()
    console.print(table)
    with session_scope(runtime.sessions) as session:
        rows = list(EstimatorVersionRepository(session).all_active())
    active = {r.name: str(r.version) for r in rows if r.name in ESTIMATOR_NAMES}
    calibration = next((r for r in rows if r.name == "calibration"), None)
    if calibration is None:
        console.print("thresholds: no calibration is active; routers use the settings (the paper's constants)")
    elif calibration.metrics.get("for_versions") != active:
        console.print(
            f"thresholds: calibration v{calibration.version} was fitted for other versions "
            f"({calibration.metrics.get('for_versions')}); routers use the settings until "
            "`hera-router promote` re-calibrates"
        )
    else:
        m = calibration.metrics
        shown = {k: m[k] for k in ("tau_req", "kappa_base", "verify_threshold", "use_urc", "use_verify") if k in m}
        console.print(
            f"thresholds: calibration v{calibration.version} applies: {shown}; held out: "
            f"{m.get('held_out_accuracy', 0):.1%} accuracy at {m.get('held_out_slm_share', 0):.1%} SLM "
            f"(All-LLM {m.get('baseline_held_out_accuracy', 0):.1%})"
        )
    console.print(mode_line(runtime), highlight=False)
    runtime.close()


@app.command("evaluate-estimator")
def evaluate_estimator(
    name: str = typer.Argument(..., help="Estimator name."),
    version: int = typer.Argument(..., help="Registered version."),
    profile_run_id: str = typer.Option(..., "--profile", help="Profile run to evaluate on (all its requests)."),
) -> None:
    """Validation metrics of a registered version on another profile run (e.g. an unseen family)."""

    from hera_router.training.trainers import evaluate_version

    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    try:
        metrics = evaluate_version(runtime, name, version, parse_run_id(profile_run_id))
    except LookupError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    typer.echo(json.dumps(metrics, indent=2, default=str))
    runtime.close()


@app.command("bootstrap")
def bootstrap_command(
    n: int = typer.Option(None, "--n", help="Simulated requests to profile (HERA_ESTIMATORS__PROFILE_REQUESTS)."),
    plan_only: bool = typer.Option(False, "--plan", help="Print the planned calls, tokens and dollars, then stop."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Call real backends without asking (after the plan)."),
    budget_usd: float = typer.Option(
        None,
        "--budget-usd",
        help="Stop profiling before a request that would spend past this (HERA_ESTIMATORS__BOOTSTRAP_BUDGET_USD).",
    ),
) -> None:
    """Plan, then profile a default simulated set, train every estimator and promote them (a fresh install's HERA).

    The plan (calls, tokens, dollars per backend) is printed first; real backends are called only
    with --yes or a spending limit.
    """
    from hera_router.training.bootstrap import plan_bootstrap, uses_real_backends

    settings = settings_or_exit()
    if budget_usd is not None and budget_usd <= 0:
        raise typer.BadParameter(f"{budget_usd:g} is not a positive amount of dollars", param_hint="--budget-usd")
    if n is not None:
        if n <= 0:
            raise typer.BadParameter(f"{n} is not a positive number of requests", param_hint="--n")
        settings = settings.model_copy(
            update={"estimators": settings.estimators.model_copy(update={"profile_requests": n})}
        )
    budget = budget_usd if budget_usd is not None else settings.estimators.bootstrap_budget_usd
    plan = plan_bootstrap(settings)
    for line in plan.lines():
        typer.echo(line)
    if plan_only:
        return
    if uses_real_backends(settings) and not yes and budget is None:
        typer.secho(
            "not calling real backends without a confirmation: rerun with --yes, or with --budget-usd N to stop "
            "before N dollars (HERA_ESTIMATORS__BOOTSTRAP_BUDGET_USD)",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=2)
    if budget is not None:
        typer.echo(f"spending limit: ${budget:.2f}")
    runtime = migrated_runtime(settings)
    bootstrap_with_progress(runtime, plan=plan, budget_usd=budget)
    runtime.close()


def _parse_slot(value: str | None) -> datetime_type | None:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        slot = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO time like 2026-11-28T02:00+00:00", param_hint="--slot"
        ) from None
    return slot if slot.tzinfo is not None else slot.replace(tzinfo=UTC)


@app.command("retrain")
def retrain_command(
    estimator: list[str] = typer.Option(
        None, "--estimator", "-e", help="dp, urc, sp_slm, sp_llm (default: HERA_CONTINUAL__ESTIMATORS)."
    ),
    slot: str = typer.Option(
        None, "--slot", help="Schedule slot (ISO time); default: this minute. One run per estimator and slot."
    ),
    queue: bool = typer.Option(False, "--queue", help="Send the run to the training queue instead of running here."),
) -> None:
    """Run continual fine-tuning now: shadow labels → LoRA update → gate → promotion (what beat runs nightly)."""
    from hera_router.db.base import utcnow
    from hera_router.pipeline.names import TaskName
    from hera_router.training.continual import manual_slot, retrain

    settings = settings_or_exit()
    when = _parse_slot(slot) or manual_slot(utcnow())
    if queue:
        from hera_router.workers import create_app

        create_app(settings).send_task(
            TaskName.RETRAIN_NIGHTLY,
            kwargs={"scheduled_for": when.isoformat(), "trigger": "cli", "names": estimator or None},
            task_id=f"retrain:{when.isoformat()}",
        )
        typer.echo(
            f"retraining for slot {when.isoformat()} queued on the training queue; follow it with `hera-router runs`"
        )
        return
    runtime = migrated_runtime(settings)
    try:
        outcomes = retrain(runtime, slot=when, names=estimator or None, trigger="cli", progress=typer.echo)
    except ValueError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    finally:
        runtime.close()
    for outcome in outcomes:
        typer.echo(outcome.describe())


@app.command("runs")
def runs_command(
    estimator: str = typer.Option(None, "--estimator", "-e", help="Only this estimator's runs."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs, newest first."),
) -> None:
    """List training runs (nightly, on demand, `train`) with their outcome and metrics."""
    from rich.table import Table

    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope
    from hera_router.training.continual import describe_run

    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    table = Table(
        "estimator", "slot (UTC)", "status", "trigger", "took", "version", "candidate", "active", "reason / error"
    )
    with session_scope(runtime.sessions) as session:
        for row in TrainingRunRepository(session).recent(limit, estimator):
            table.add_row(*describe_run(row))
