"""Agent requests from the command line: ``run`` (embedded), ``submit``, ``status``, ``results``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import (
    app,
    broker_or_exit,
    checked_runtime,
    ensure_estimators,
    is_simulated,
    settings_or_exit,
    shared_broker_or_exit,
    world_label,
)
from hera_router.config import Mode, Settings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.table import Table

    from hera_router.agent.inputs import RequestFile


def _read_request_file(path: Path) -> RequestFile:
    from hera_router.agent.inputs import read_request_file

    try:
        return read_request_file(path)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="FILE") from None


def _branch_table(rows: Sequence[tuple[str, Mapping[str, tuple[int, int]]]], *, title: str) -> Table:
    """Decisions per branch and policy: "decisions (steps covered)" in each cell."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("branch", style="bold")
    for policy, _ in rows:
        table.add_column(policy, justify="right")
    names = sorted({branch for _, counts in rows for branch in counts}, key=lambda b: (b not in HERA_BRANCHES, b))
    for branch in names:
        cells = []
        for _, counts in rows:
            decisions, steps = counts.get(branch, (0, 0))
            cells.append(f"{decisions} ({steps})" if decisions else "-")
        table.add_row(branch, *cells)
    return table


HERA_BRANCHES = ("urc", "sse", "sle", "cd", "sd", "fallback", "verify")


@app.command("run")
def run(
    file: Path = typer.Argument(..., help="JSONL of requests (API items, or `world generate` records)."),
    policies: list[str] = typer.Option(
        [], "--policy", "-p", help="Routing policy; repeat to compare several on the same requests."
    ),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Threads of the in-process worker."),
) -> None:
    """Run FILE to completion in this process: SQLite, in-memory broker, in-process workers.

    The same tasks, outbox and recovery paths as the distributed deployment; the models are the
    configured backends (by default the simulated world, so results are labelled "simulated").
    """
    from rich.console import Console

    from hera_router.agent.batch_run import LOCAL_TENANT, ensure_tenant, follow_batch, submit_file
    from hera_router.api.errors import SubmissionError
    from hera_router.api.service import SubmissionService
    from hera_router.db.repositories import DecisionRepository
    from hera_router.db.repositories.plan_nodes import PlanNodeRepository
    from hera_router.db.session import session_scope
    from hera_router.evaluation.summary import summarise_run, summary_table
    from hera_router.routing.registry import needs_estimators, policy_names
    from hera_router.workers.publisher import celery_dispatcher
    from hera_router.workers.system import embedded_system

    settings = settings_or_exit()
    request_file = _read_request_file(file)
    updates: dict[str, object] = {"mode": Mode.EMBEDDED, "broker_url": "memory://"}
    if is_simulated(settings) and request_file.world_seeds:
        if len(request_file.world_seeds) > 1:
            raise typer.BadParameter(f"{file} mixes world seeds {sorted(request_file.world_seeds)}", param_hint="FILE")
        # The simulated models must live in the world the requests were generated from.
        updates["simulator"] = settings.simulator.model_copy(update={"seed": next(iter(request_file.world_seeds))})
    settings = settings.model_copy(update=updates)
    for name in policies:
        if name not in policy_names():
            known = ", ".join(policy_names())
            raise typer.BadParameter(f"unknown policy {name!r}; known: {known}", param_hint="--policy")
    if any(needs_estimators(name) for name in policies or [settings.routing.policy]):
        ensure_estimators(settings, policies)
    # HybridLLM's router as `bootstrap` fitted it, unless the settings name another.
    from hera_router.training.baselines import default_paths

    fitted = default_paths(settings).hybridllm
    if settings.routing.hybridllm_model_path is None and fitted.is_file():
        settings = settings.model_copy(
            update={"routing": settings.routing.model_copy(update={"hybridllm_model_path": fitted})}
        )
    console = Console()
    results = []
    branches: list[tuple[str, dict[str, tuple[int, int]]]] = []
    with embedded_system(settings, concurrency=concurrency) as system:
        sessions = system.app.hera_runtime.sessions
        service = SubmissionService(settings, sessions, celery_dispatcher(system.app))
        tenant = ensure_tenant(sessions, LOCAL_TENANT)
        for policy in policies or [settings.routing.policy]:
            try:
                submission = submit_file(service, tenant, file, request_file, policy=policy, console=console)
            except SubmissionError as exc:
                typer.secho(str(exc), err=True, fg=typer.colors.RED)
                raise typer.Exit(code=2) from None
            readers = system.app.hera_runtime.read_sessions
            ids = follow_batch(readers, submission.batch.id, console=console, label=policy)
            with session_scope(sessions) as session:
                results.append((policy, summarise_run(session, settings, ids)))
                # A graph request's steps are mostly its nodes' (requests of their own, docs/graphs.md).
                decided = [*ids, *PlanNodeRepository(session).node_request_ids(ids)]
                branches.append((policy, DecisionRepository(session).branch_counts(decided)))
    world = world_label(settings)
    console.print(summary_table(results, title=f"{file.name}: {results[0][1].requests} requests{world}"))
    console.print(_branch_table(branches, title=f"Decisions per branch (steps each covers){world}"))


@app.command("submit")
def submit(
    file: Path = typer.Argument(..., help="JSONL of requests (API items, or `world generate` records)."),
    policy: str | None = typer.Option(None, "--policy", "-p", help="Routing policy for items that name none."),
    tenant: str = typer.Option("local", "--tenant", help="Tenant the batch belongs to (created if missing)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the batch with a progress bar."),
) -> None:
    """Submit FILE as a batch to the configured deployment (its database and broker) and follow it.

    Workers must be running (`hera-router worker`); this command only writes and watches.
    """
    from rich.console import Console

    from hera_router.agent.batch_run import ensure_tenant, follow_batch, submit_file
    from hera_router.api.errors import SubmissionError
    from hera_router.api.health import idle_queues_problem, queue_consumers
    from hera_router.api.service import SubmissionService
    from hera_router.db.session import session_scope
    from hera_router.evaluation.summary import summarise_run, summary_table
    from hera_router.workers import create_app
    from hera_router.workers.publisher import celery_dispatcher

    settings = settings_or_exit()
    shared_broker_or_exit(settings, "submit")
    request_file = _read_request_file(file)
    console = Console()
    checked_runtime(settings).close()
    app_ = create_app(settings)
    broker_or_exit(app_, consequence="nothing would run the batch; start the broker or fix HERA_BROKER_URL")
    consumers = queue_consumers(app_)
    idle = None if consumers is None else idle_queues_problem(settings, consumers)
    if idle is not None:
        typer.secho(f"warning: {idle}", err=True, fg=typer.colors.YELLOW)
    sessions = app_.hera_runtime.sessions
    service = SubmissionService(settings, sessions, celery_dispatcher(app_))
    try:
        submission = submit_file(
            service, ensure_tenant(sessions, tenant), file, request_file, policy=policy, console=console
        )
    except SubmissionError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    console.print(f"batch {submission.batch.id}: {submission.batch.accepted} requests queued")
    if not wait:
        return
    readers = app_.hera_runtime.read_sessions
    ids = follow_batch(readers, submission.batch.id, console=console, label=submission.batch.policy)
    with session_scope(sessions) as session:
        summary = summarise_run(session, settings, ids)
    world = world_label(settings)
    console.print(summary_table([(submission.batch.policy, summary)], title=f"batch {submission.batch.id}{world}"))


@app.command("status")
def status(batch_id: str | None = typer.Argument(None, help="A batch id; without it, requests by status.")) -> None:
    """Show a batch's progress, or how many requests are in each status, and which workers consume
    each queue (a queue nobody consumes is why requests stay queued)."""

    from hera_router.db.repositories import BatchRepository, RequestRepository
    from hera_router.db.session import session_scope

    # An unreachable or unmigrated database is one sentence, not a traceback.
    settings = settings_or_exit()
    runtime = checked_runtime(settings)
    with session_scope(runtime.sessions) as session:
        if batch_id is None:
            counts = RequestRepository(session).count_by_status()
            for state, count in sorted(counts.items()):
                typer.echo(f"{state.value:>10}  {count}")
            runtime.close()
            _print_consumers(settings)
            return
        try:
            parsed = uuid.UUID(batch_id)
        except ValueError:
            raise typer.BadParameter(f"{batch_id!r} is not a batch id (a UUID)", param_hint="BATCH_ID") from None
        batch = BatchRepository(session).get(parsed)
        if batch is None:
            typer.secho(f"no batch {batch_id}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=1)
        progress = BatchRepository(session).progress(parsed)
        typer.echo(
            f"batch {batch.id} ({batch.policy}): {progress.done}/{progress.total} done, ${progress.cost_usd:.4f}"
        )
        for state, count in sorted(progress.counts.items()):
            typer.echo(f"{state.value:>10}  {count}")
        for rejected in batch.rejected:
            typer.echo(f"  rejected: {rejected.get('error')}")
    runtime.close()
    _print_consumers(settings)


def _print_consumers(settings: Settings) -> None:
    """Each queue and the workers consuming it, or why that cannot be seen from here."""
    from hera_router.api.health import broker_problem, idle_queues_problem, queue_consumers
    from hera_router.workers import create_app

    if settings.broker_url.startswith("memory://"):
        typer.echo(
            "queues: the broker is memory://, private to each process, so no consumer is visible from here "
            "(`hera-router serve-api` runs its own workers; its /healthz lists them)"
        )
        return
    celery_app = create_app(settings)
    problem = broker_problem(celery_app, consequence="")
    consumers = None if problem is not None else queue_consumers(celery_app)
    if consumers is None:
        typer.secho(f"queues: {problem or 'the workers could not be asked'}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    typer.echo("queues:")
    for name, nodes in consumers.items():
        typer.echo(f"{name:>12}  {', '.join(nodes) if nodes else 'no consumer'}")
    idle = idle_queues_problem(settings, consumers)
    if idle is not None:
        typer.secho(f"warning: {idle}", err=True, fg=typer.colors.YELLOW)


@app.command("results")
def results(
    batch_id: str = typer.Argument(..., help="The batch id printed by `submit` (or returned by the API)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSONL here instead of stdout."),
) -> None:
    """Write a batch's results as JSONL: one line per request, in submission order."""
    import sys

    from hera_router.api.views import RequestViews
    from hera_router.db.repositories import BatchRepository
    from hera_router.db.session import session_scope

    try:
        parsed = uuid.UUID(batch_id)
    except ValueError:
        raise typer.BadParameter(f"{batch_id!r} is not a batch id (a UUID)", param_hint="BATCH_ID") from None
    runtime = checked_runtime(settings_or_exit())
    with session_scope(runtime.sessions) as session:
        batch = BatchRepository(session).get(parsed)
    lines = RequestViews(runtime.sessions).batch_results(batch.tenant_id, parsed) if batch is not None else None
    if lines is None:
        typer.secho(f"no batch {batch_id}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    if out is None:
        sys.stdout.writelines(lines)
    else:
        with out.open("w", encoding="utf-8") as sink:
            sink.writelines(lines)
    from hera_router.db.repositories import CostRepository

    with session_scope(runtime.sessions) as session:
        total = CostRepository(session).for_batch(parsed)
    # The batch's cost by component on stderr, so stdout stays pure JSONL.
    typer.secho(
        f"batch cost ${total.total_usd:.6f} = tokens ${total.tokens_usd:.6f} + GPU ${total.gpu_usd:.6f} + "
        f"energy ${total.energy_usd:.6f} + transfer ${total.transfer_usd:.6f} ({total.calls} model calls; "
        f"the paper's cloud-only cost: ${total.cloud_tokens_usd:.6f})",
        err=True,
    )
    runtime.close()
