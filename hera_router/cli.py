"""The ``hera-router`` command line.

Each command reads the settings once, reports bad settings as one readable message, and keeps
heavy imports (torch, transformers, celery) inside the command that needs them so that
``hera-router --help`` stays instant.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hera_router.config import Mode, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime as datetime_type

    from rich.table import Table

    from hera_router.agent.inputs import RequestFile
    from hera_router.workers.runtime import Runtime

app = typer.Typer(
    name="hera-router",
    help="Route each step of an AI agent between an edge SLM and a cloud LLM (HERA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """hera-router: configuration comes from HERA_* environment variables (see README)."""
    quiet_libraries()


def quiet_libraries() -> None:
    """Keep the model libraries' load reports, progress bars and deprecation notices out of the
    CLI's output (they say nothing to a user of hera-router; HERA_LOG_LEVEL=DEBUG brings logs back)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|transformers|peft)(\.|$)")
    for name in ("transformers", "sentence_transformers", "peft", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def settings_or_exit() -> Settings:
    """Load the settings, or print which variable is wrong and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")


def mask_url(text: str) -> str:
    """``postgresql+psycopg://user:secret@host/db`` → ``postgresql+psycopg://user:***@host/db``."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


@app.command("config")
def show_config() -> None:
    """Print the effective settings (secrets masked, passwords inside URLs too)."""
    settings = settings_or_exit()
    typer.echo(json.dumps(_masked(settings.model_dump(mode="json")), indent=2))


db_app = typer.Typer(help="Database schema: apply, revert and check the Alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations to HERA_DATABASE_URL (default: the embedded SQLite file)."""
    from hera_router.db.migrate import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {mask_url(settings.database_url)} is at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. 'base' or '-1'.")) -> None:
    """Revert migrations down to REVISION."""
    from hera_router.db.migrate import downgrade

    settings = settings_or_exit()
    downgrade(settings.database_url, revision)
    typer.echo(f"database at {mask_url(settings.database_url)} is at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree (what `alembic check` does)."""
    from hera_router.db.migrate import check

    check(settings_or_exit().database_url)
    typer.echo("no drift between the models and the migrations")


@app.command(
    "worker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def worker(
    ctx: typer.Context,
    queues: str = typer.Option(
        "router", "--queues", "-Q", help="Comma-separated logical queues: router, edge, cloud, training, maintenance."
    ),
    concurrency: int = typer.Option(2, "--concurrency", "-c"),
    pool: str = typer.Option(
        "prefork", "--pool", "-P", help="prefork for CPU work, threads for I/O-bound cloud calls."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve Prometheus /metrics on this port [default: HERA_OPS__WORKER_METRICS_PORT; 0: off].",
    ),
) -> None:
    """Run a Celery worker for the given queues. Extra options go to `celery worker` unchanged."""
    from hera_router.multiprocess_metrics import enable_multiprocess_metrics

    settings = settings_or_exit()
    # Before anything imports prometheus_client (hera_router.workers does): see the module.
    metrics_dir = enable_multiprocess_metrics(settings)

    from hera_router.workers import Queue, create_app
    from hera_router.workers.metrics import MetricsEndpoint, serve_metrics
    from hera_router.workers.queues import physical_name

    try:
        selected = [Queue(name.strip()) for name in queues.split(",") if name.strip()]
    except ValueError as exc:
        known = ", ".join(queue.value for queue in Queue)
        raise typer.BadParameter(f"{exc}; known queues: {known}", param_hint="--queues") from None
    physical = ",".join(physical_name(queue, settings.queues) for queue in selected)
    celery_app = create_app(settings)
    port = settings.ops.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        host = settings.ops.metrics_host
        try:
            serve_metrics(MetricsEndpoint(settings, multiprocess_dir=metrics_dir).registry, host, port)
        except OSError as exc:
            typer.secho(f"cannot serve metrics on {host}:{port}: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from None
        typer.echo(f"worker metrics on http://{host}:{port}/metrics")
    from hera_router.workers.supervision import run_worker

    raise typer.Exit(run_worker(celery_app, physical, concurrency=concurrency, pool=pool, extra=ctx.args))


@app.command("serve-models")
def serve_models(
    *,
    backend: str = typer.Option("echo", "--backend", "-b", help="Backend to serve: echo, sim, local, ..."),
    model: str | None = typer.Option(
        None, "--model", help="Model name; default: echo -> echo, local -> smollm2-135m-instruct, sim -> the role's."
    ),
    role: str = typer.Option("edge", "--role", help="Settings to start from: edge (sim: SLM) or cloud (sim: LLM)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address; keep loopback unless inside a container."),
    port: int = typer.Option(8080, "--port"),
    error_rate: float = typer.Option(0.0, "--error-rate", min=0.0, max=1.0, help="Share of requests failed."),
    error_status: int = typer.Option(500, "--error-status", help="HTTP status of the injected failures."),
    latency_s: float = typer.Option(0.0, "--latency", min=0.0, help="Seconds added before every answer."),
) -> None:
    """Serve a model over the TGI and OpenAI protocols (the loopback dev model server)."""
    from hera_router.backends.base import BackendConfigError
    from hera_router.devserver.faults import FaultConfig
    from hera_router.devserver.server import serve

    if role not in ("edge", "cloud"):
        raise typer.BadParameter("choose edge or cloud", param_hint="--role")
    settings = settings_or_exit()
    if host not in ("127.0.0.1", "::1", "localhost"):
        typer.secho(f"warning: serving on {host}, not loopback; the dev server has no auth", err=True)
    faults = FaultConfig(error_rate=error_rate, error_status=error_status, latency_s=latency_s)
    typer.echo(f"serving backend {backend!r} on http://{host}:{port} (TGI: /, OpenAI: /v1)")
    try:
        serve(
            settings,
            backend=backend,
            role="edge" if role == "edge" else "cloud",
            model=model,
            host=host,
            port=port,
            faults=faults,
        )
    except BackendConfigError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


def _read_request_file(path: Path) -> RequestFile:
    from hera_router.agent.inputs import read_request_file

    try:
        return read_request_file(path)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="FILE") from None


def _is_simulated(settings: Settings) -> bool:
    return settings.edge.backend == "sim" or settings.cloud.backend == "sim"


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
    from hera_router.agent.embedded import embedded_system
    from hera_router.api.errors import SubmissionError
    from hera_router.api.service import SubmissionService
    from hera_router.db.repositories import DecisionRepository
    from hera_router.db.session import session_scope
    from hera_router.evaluation.summary import summarise, summary_table
    from hera_router.routing.registry import needs_estimators, policy_names
    from hera_router.workers.dispatch import Dispatcher

    settings = settings_or_exit()
    request_file = _read_request_file(file)
    updates: dict[str, object] = {"mode": Mode.EMBEDDED, "broker_url": "memory://"}
    if _is_simulated(settings) and request_file.world_seeds:
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
        _ensure_estimators(settings)
    # HybridLLM's router as `bootstrap` fitted it, unless the settings name another.
    from hera_router.evaluation.baselines import default_paths

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
        service = SubmissionService(settings, sessions, Dispatcher(system.app))
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
                results.append((policy, summarise(session, settings, ids)))
                branches.append((policy, DecisionRepository(session).branch_counts(ids)))
    world = " (simulated world)" if _is_simulated(settings) else ""
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
    from hera_router.api.service import SubmissionService
    from hera_router.db.session import session_scope
    from hera_router.evaluation.summary import summarise, summary_table
    from hera_router.workers import create_app
    from hera_router.workers.dispatch import Dispatcher

    settings = settings_or_exit()
    request_file = _read_request_file(file)
    console = Console()
    app_ = create_app(settings)
    sessions = app_.hera_runtime.sessions
    service = SubmissionService(settings, sessions, Dispatcher(app_))
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
        summary = summarise(session, settings, ids)
    world = " (simulated world)" if _is_simulated(settings) else ""
    console.print(summary_table([(submission.batch.policy, summary)], title=f"batch {submission.batch.id}{world}"))


@app.command("status")
def status(batch_id: str | None = typer.Argument(None, help="A batch id; without it, requests by status.")) -> None:
    """Show a batch's progress, or how many requests are in each status."""
    import uuid

    from hera_router.db.repositories import BatchRepository, RequestRepository
    from hera_router.db.session import session_scope

    # An unreachable or unmigrated database is one sentence, not a traceback.
    runtime = _checked_runtime(settings_or_exit())
    with session_scope(runtime.sessions) as session:
        if batch_id is None:
            counts = RequestRepository(session).count_by_status()
            for state, count in sorted(counts.items()):
                typer.echo(f"{state.value:>10}  {count}")
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


def _checked_runtime(settings: Settings) -> Runtime:
    """The database runtime, or a clear exit if the database is down or was never migrated.

    The producer never migrates on its own: `hera-router db upgrade` is an explicit step, so an
    API pointed at the wrong database says so instead of creating tables there.
    """
    from hera_router.api.health import database_problem
    from hera_router.workers.runtime import Runtime

    runtime = Runtime(settings)
    problem = database_problem(runtime.engine)
    if problem is not None:
        runtime.close()
        typer.secho(problem, err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    return runtime


@app.command("serve-api")
def serve_api(
    host: str | None = typer.Option(None, "--host", help="Bind address [default: HERA_API__HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="Port [default: HERA_API__PORT, 8000]."),
) -> None:
    """Serve the producer API (OpenAPI docs at /docs). Run `hera-router db upgrade` first."""
    import uvicorn

    from hera_router.api.app import create_app

    settings = settings_or_exit()
    _checked_runtime(settings).close()
    bind_host = host or settings.api.host
    bind_port = settings.api.port if port is None else port
    typer.echo(f"serving the producer API on http://{bind_host}:{bind_port} (docs: /docs)")
    uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_level=settings.log_level.lower())


tenants_app = typer.Typer(help="Tenants of the producer API; run `hera-router db upgrade` first.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
keys_app = typer.Typer(help="API keys of the producer API's tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@tenants_app.command("create")
def tenants_create(name: str = typer.Argument(..., help="A unique name for the tenant.")) -> None:
    """Create a tenant; then give it a key with `hera-router keys create NAME`."""
    from hera_router.api.tenants import TenantError, create_tenant

    runtime = _checked_runtime(settings_or_exit())
    try:
        tenant = create_tenant(runtime.sessions, name)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    typer.echo(f"created tenant {tenant.name!r} ({tenant.id}); give it a key: `hera-router keys create {tenant.name}`")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Argument(..., help="Name of the tenant the key belongs to."),
    name: str = typer.Option("default", "--name", help="A label for the key, e.g. where it is used."),
) -> None:
    """Create an API key and print its secret, once: only a hash is stored.

    The secret is the only thing on stdout (`KEY=$(hera-router keys create acme)` works); the
    notes go to stderr.
    """
    from hera_router.api.tenants import TenantError, create_api_key

    runtime = _checked_runtime(settings_or_exit())
    try:
        key, secret = create_api_key(runtime.sessions, tenant, name)
    except TenantError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    finally:
        runtime.close()
    typer.echo(secret)
    typer.secho(
        f"API key {key.name!r} ({key.id}) for tenant {tenant!r}: store the secret above now, it cannot be shown "
        "again. Send it as 'Authorization: Bearer <key>'.",
        err=True,
        fg=typer.colors.YELLOW,
    )


@app.command("results")
def results(
    batch_id: str = typer.Argument(..., help="The batch id printed by `submit` (or returned by the API)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSONL here instead of stdout."),
) -> None:
    """Write a batch's results as JSONL: one line per request, in submission order."""
    import sys
    import uuid

    from hera_router.api.views import RequestViews
    from hera_router.db.repositories import BatchRepository
    from hera_router.db.session import session_scope
    from hera_router.workers.runtime import Runtime

    try:
        parsed = uuid.UUID(batch_id)
    except ValueError:
        raise typer.BadParameter(f"{batch_id!r} is not a batch id (a UUID)", param_hint="BATCH_ID") from None
    runtime = Runtime(settings_or_exit())
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
    runtime.close()


@app.command("flower", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def flower(
    ctx: typer.Context,
    *,
    insecure: bool = typer.Option(
        False, "--insecure", help="Start without basic auth (anyone who reaches the port sees and controls tasks)."
    ),
    read_only: bool | None = typer.Option(
        None,
        "--read-only/--allow-control",
        help="Disable revoke/shutdown/pool actions [default: HERA_OPS__FLOWER_READ_ONLY].",
    ),
    address: str | None = typer.Option(None, "--address", help="Bind address [default: HERA_OPS__FLOWER_ADDRESS]."),
    port: int | None = typer.Option(None, "--port", help="Port [default: HERA_OPS__FLOWER_PORT, 5555]."),
) -> None:
    """Run Flower for this deployment's broker, with basic auth (HERA_OPS__FLOWER_BASIC_AUTH).

    Workers send task events and producers send task-sent, so every task shows up with its name,
    queue, arguments (ids only), runtime and state. Extra options go to Flower unchanged, e.g.
    `--url_prefix=flower` behind a proxy.
    """
    import os

    from hera_router.workers import create_app

    settings = settings_or_exit()
    ops = settings.ops
    if ops.flower_basic_auth is None and not insecure:
        typer.secho(
            "refusing to start Flower without authentication: set HERA_OPS__FLOWER_BASIC_AUTH=user:password "
            "(or pass --insecure on a machine nobody else can reach)",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=2)
    if ops.flower_basic_auth is not None:
        # Through Flower's own FLOWER_* variables, so the password never shows in `ps`.
        os.environ["FLOWER_BASIC_AUTH"] = ops.flower_basic_auth.get_secret_value()
    if ops.flower_cookie_secret is not None:
        os.environ["FLOWER_COOKIE_SECRET"] = ops.flower_cookie_secret.get_secret_value()
    options = [
        f"--address={address or ops.flower_address}",
        f"--port={ops.flower_port if port is None else port}",
        f"--read_only={ops.flower_read_only if read_only is None else read_only}",
        "--enable_events=True",
    ]
    if ops.flower_db is not None:
        options += ["--persistent=True", f"--db={ops.flower_db}", "--state_save_interval=60000"]
    create_app(settings).start(["flower", *options, *ctx.args])


@app.command("beat")
def beat() -> None:
    """Run Celery beat: the outbox relay and the reconciler every few seconds. Run exactly one.

    Two beats would each schedule every entry; the tasks stay correct (idempotent, locked) but do
    the work twice. The schedule state lives in HERA_DATA_DIR/celerybeat-schedule.
    """
    from hera_router.workers import create_app

    settings = settings_or_exit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir / "celerybeat-schedule"
    from hera_router.workers.supervision import run_beat

    raise typer.Exit(run_beat(create_app(settings), ["beat", "-l", settings.log_level, "--schedule", str(schedule)]))


@app.command("ping")
def ping(
    node: str = typer.Option(
        ..., "--node", "-d", help="Worker node name, e.g. router@%h (%h: this host's name, as in `celery worker -n`)."
    ),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the answer."),
) -> None:
    """Exit 0 if the worker's consumer answers a ping (`celery inspect ping -d NODE`), 1 if not.

    A liveness probe that proves the worker still takes messages from the broker, not only that its
    process exists (a worker stuck on a lost connection keeps running).
    """
    import socket

    from hera_router.workers import create_app

    destination = node.replace("%h", socket.gethostname())
    celery_app = create_app(settings_or_exit())
    try:
        replies = celery_app.control.inspect(destination=[destination], timeout=timeout_s).ping() or {}
    except Exception as exc:  # kombu raises transport-specific connection errors
        typer.secho(f"cannot reach the broker at {celery_app.conf.broker_url}: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    if destination not in replies:
        typer.secho(f"worker {destination} did not answer within {timeout_s:g} s", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    typer.echo(f"{destination}: {replies[destination].get('ok', 'pong')}")


# --- profiling, training and the estimator registry (training/, estimators/) -------------------


def _migrated_runtime(settings: Settings) -> Runtime:
    """A runtime on a migrated database (embedded SQLite is migrated here, like `run` does)."""
    from hera_router.db.migrate import upgrade

    if not settings.is_postgres:
        upgrade(settings.database_url)
    return _checked_runtime(settings)


def _parse_run_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a profile run id (a UUID)", param_hint="--profile") from None


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
    runtime = _migrated_runtime(settings)
    if resume:
        run_id = _parse_run_id(resume)
    else:
        source = "sim" if file is None and _is_simulated(settings) else "real"
        config = run_config(settings, family=family, n=n, offset=offset, file=file, node_budget=budget)
        run_id = create_run(runtime.sessions, name, source, config)
    if queue:
        from hera_router.workers import create_app

        create_app(settings).send_task("training.profile", kwargs={"run_id": str(run_id)})
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
    simulated = " (simulated)" if _is_simulated(settings) and file is None else ""
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
    runtime = _migrated_runtime(settings)
    if profile_run_id:
        run_id = _parse_run_id(profile_run_id)
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
    runtime = _checked_runtime(settings)
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
    """List every estimator version with its status, backbone and headline validation metric."""
    from rich.console import Console
    from rich.table import Table

    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.training.evaluation import headline

    settings = settings_or_exit()
    runtime = _checked_runtime(settings)
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
    active = {r.name: str(r.version) for r in rows if r.name != "calibration"}
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
    runtime.close()


@app.command("evaluate-estimator")
def evaluate_estimator(
    name: str = typer.Argument(..., help="Estimator name."),
    version: int = typer.Argument(..., help="Registered version."),
    profile_run_id: str = typer.Option(..., "--profile", help="Profile run to evaluate on (all its requests)."),
) -> None:
    """Validation metrics of a registered version on another profile run (e.g. an unseen family)."""
    import json

    from hera_router.training.trainers import evaluate_version

    settings = settings_or_exit()
    runtime = _checked_runtime(settings)
    try:
        metrics = evaluate_version(runtime, name, version, _parse_run_id(profile_run_id))
    except LookupError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    typer.echo(json.dumps(metrics, indent=2, default=str))
    runtime.close()


@app.command("bootstrap")
def bootstrap_command(
    n: int = typer.Option(None, "--n", help="Simulated requests to profile (HERA_ESTIMATORS__PROFILE_REQUESTS)."),
) -> None:
    """Profile a default simulated set, train every estimator and promote them (a fresh install's HERA)."""
    settings = settings_or_exit()
    if n is not None:
        settings = settings.model_copy(
            update={"estimators": settings.estimators.model_copy(update={"profile_requests": n})}
        )
    runtime = _migrated_runtime(settings)
    _bootstrap_with_progress(runtime)
    runtime.close()


def _bootstrap_with_progress(runtime: Runtime) -> None:
    import time

    from rich.progress import Progress

    from hera_router.training.bootstrap import bootstrap
    from hera_router.training.evaluation import headline

    started = time.perf_counter()
    with Progress() as bar:
        task = bar.add_task("profiling", total=None)
        result = bootstrap(
            runtime,
            on_request=lambda done, total: bar.update(task, completed=done, total=total),
            progress=bar.console.log,
        )
    for trained in result.trained:
        metric, value, baseline = headline(trained.metrics)
        typer.echo(
            f"{trained.name:7} v{trained.version} {trained.variant:22} {metric} {value:.3f} (baseline {baseline:.3f})"
        )
    if result.calibration is not None:
        held = result.calibration["held_out"]
        typer.echo(
            f"calibration v{result.calibration['version']}: {result.calibration['thresholds']}; held out "
            f"({held['requests']} requests): hera {held['hera']['accuracy']:.1%} accuracy at "
            f"{held['hera']['slm_share']:.1%} SLM, All-LLM {held['all-llm']['accuracy']:.1%}, "
            f"hera-paper {held['hera-paper']['accuracy']:.1%} at {held['hera-paper']['slm_share']:.1%} SLM"
        )
    if result.hybridllm_path is not None:
        typer.echo(f"hybridllm: router fitted, {result.hybridllm_path}")
    world = " (simulated)" if _is_simulated(runtime.settings) else ""
    typer.echo(
        f"profile run {result.run_id}: {result.requests} requests{world}; "
        f"bootstrap took {time.perf_counter() - started:.0f} s"
    )


def _ensure_estimators(settings: Settings) -> None:
    """Bootstrap when no complete set of estimators is active (what `run --policy hera` needs)."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES

    runtime = _migrated_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            active = {row.name for row in EstimatorVersionRepository(session).all_active()}
        # Without a calibration HERA still routes (the paper's constants); anything else missing,
        # including the divergence estimator of an older data dir, means bootstrapping again.
        missing = [name for name in ESTIMATOR_NAMES if name not in active]
        if missing:
            typer.echo(
                f"no active {', '.join(missing)} estimator{'s' if len(missing) > 1 else ''}: "
                "running `hera-router bootstrap` first (a few minutes, once per data dir)"
            )
            _bootstrap_with_progress(runtime)
    finally:
        runtime.close()


# --- continual fine-tuning (training/continual.py, docs/continual.md) ---------------------------


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
    from hera_router.training.continual import RETRAIN_TASK, manual_slot, retrain

    settings = settings_or_exit()
    when = _parse_slot(slot) or manual_slot(utcnow())
    if queue:
        from hera_router.workers import create_app

        create_app(settings).send_task(
            RETRAIN_TASK,
            kwargs={"scheduled_for": when.isoformat(), "trigger": "cli", "names": estimator or None},
            task_id=f"retrain:{when.isoformat()}",
        )
        typer.echo(
            f"retraining for slot {when.isoformat()} queued on the training queue; follow it with `hera-router runs`"
        )
        return
    runtime = _migrated_runtime(settings)
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
    from rich.console import Console
    from rich.table import Table

    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope
    from hera_router.training.continual import describe_run

    settings = settings_or_exit()
    runtime = _checked_runtime(settings)
    table = Table(
        "estimator", "slot (UTC)", "status", "trigger", "took", "version", "candidate", "active", "reason / error"
    )
    with session_scope(runtime.sessions) as session:
        for row in TrainingRunRepository(session).recent(limit, estimator):
            table.add_row(*describe_run(row))
    Console(width=200).print(table)
    runtime.close()


# The simulated agent world; its module imports only typer, the simulator loads per command.
from hera_router.simulator.cli import world_app  # noqa: E402

app.add_typer(world_app, name="world")

from hera_router.evaluation.cli import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

if __name__ == "__main__":
    app()
