"""The ``hera-router`` command line.

Each command reads the settings once, reports bad settings as one readable message, and keeps
heavy imports (torch, transformers, celery) inside the command that needs them so that
``hera-router --help`` stays instant.
"""

from __future__ import annotations

import typer

from hera_router.config import Settings, SettingsError, load_settings

app = typer.Typer(
    name="hera-router",
    help="Route each step of an AI agent between an edge SLM and a cloud LLM (HERA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """hera-router: configuration comes from HERA_* environment variables (see README)."""


def settings_or_exit() -> Settings:
    """Load the settings, or print which variable is wrong and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


@app.command("config")
def show_config() -> None:
    """Print the effective settings (secrets masked)."""
    settings = settings_or_exit()
    typer.echo(settings.model_dump_json(indent=2))


db_app = typer.Typer(help="Database schema: apply, revert and check the Alembic migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations to HERA_DATABASE_URL (default: the embedded SQLite file)."""
    from hera_router.db.migrate import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url} is at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. 'base' or '-1'.")) -> None:
    """Revert migrations down to REVISION."""
    from hera_router.db.migrate import downgrade

    settings = settings_or_exit()
    downgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url} is at {revision}")


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
) -> None:
    """Run a Celery worker for the given queues. Extra options go to `celery worker` unchanged."""
    from hera_router.workers import Queue, create_app
    from hera_router.workers.queues import physical_name

    settings = settings_or_exit()
    try:
        selected = [Queue(name.strip()) for name in queues.split(",") if name.strip()]
    except ValueError as exc:
        known = ", ".join(queue.value for queue in Queue)
        raise typer.BadParameter(f"{exc}; known queues: {known}", param_hint="--queues") from None
    physical = ",".join(physical_name(queue, settings.queues) for queue in selected)
    celery_app = create_app(settings)
    celery_app.worker_main(
        ["worker", "-Q", physical, "-c", str(concurrency), "-P", pool, "-E", "-l", settings.log_level, *ctx.args]
    )


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

# The simulated agent world; its module imports only typer, the simulator loads per command.
from hera_router.simulator.cli import world_app  # noqa: E402

app.add_typer(world_app, name="world")

if __name__ == "__main__":
    app()
