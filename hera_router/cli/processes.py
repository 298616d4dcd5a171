"""The long-running processes: ``worker``, ``beat``, ``flower``, ``serve-api``, ``serve-models``, and ``ping``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import app, broker_or_exit, checked_runtime, settings_or_exit, shared_broker_or_exit
from hera_router.config import SettingsError

if TYPE_CHECKING:
    from hera_router.config import Settings

WORKER_BROKER_DOWN = (
    "the worker exits rather than wait (a supervisor restarts it); start the broker or fix HERA_BROKER_URL"
)


@app.command(
    "worker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def worker(
    ctx: typer.Context,
    queues: str = typer.Option(
        "router",
        "--queues",
        "-Q",
        help="Comma-separated logical queues (router, edge, cloud, training, maintenance) or model tiers' "
        "queues (HERA_MODELS: a tier's `queue`, or its name).",
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        help="Worker slots [default: 2; a worker of model tiers' queues only: the sum of their `capacity`].",
    ),
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
    from hera_router.metrics.multiprocess import enable_multiprocess_metrics

    settings = settings_or_exit()
    shared_broker_or_exit(settings, "worker")
    priced_or_exit(settings)
    # Before anything imports prometheus_client (hera_router.workers does): see the module.
    metrics_dir = enable_multiprocess_metrics(settings)

    from hera_router.metrics.instruments import MetricsEndpoint, serve_metrics
    from hera_router.pipeline.tiers import tier_concurrency, tier_queues
    from hera_router.workers import Queue, create_app
    from hera_router.workers.queues import physical_name

    by_tier = tier_queues(settings)
    selected: list[str] = []
    for name in (part.strip() for part in queues.split(",")):
        if not name:
            continue
        if name in {queue.value for queue in Queue}:
            selected.append(physical_name(Queue(name), settings.queues))
        elif name in by_tier or name in by_tier.values():
            selected.append(by_tier.get(name, name))  # a tier's name, or its queue
        else:
            known = ", ".join([*(queue.value for queue in Queue), *dict.fromkeys(by_tier.values())])
            raise typer.BadParameter(f"{name!r} is not a queue; known queues: {known}", param_hint="--queues")
    physical = ",".join(dict.fromkeys(selected))
    if concurrency is None:
        concurrency = tier_concurrency(settings, selected) or 2
    celery_app = create_app(settings)
    # A broker that is down at start is one sentence; one lost later is retried
    # (HERA_BROKER_CONNECTION_MAX_RETRIES), then the worker exits 1.
    broker_or_exit(celery_app, consequence=WORKER_BROKER_DOWN)
    checked_runtime(settings).close()
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


def priced_or_exit(settings: Settings) -> None:
    """Exit with the sentence that says how to price the cloud model when it has no price: its
    calls would be billed $0 and no budget would ever count them."""
    from hera_router.backends.pricing import require_cloud_prices

    try:
        require_cloud_prices(settings)
    except SettingsError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


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


@app.command("serve-api")
def serve_api(
    host: str | None = typer.Option(None, "--host", help="Bind address [default: HERA_API__HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="Port [default: HERA_API__PORT, 8000]."),
    concurrency: int = typer.Option(
        4, "--concurrency", "-c", min=1, help="Threads of the in-process workers (memory:// broker only)."
    ),
) -> None:
    """Serve the producer API (OpenAPI docs at /docs). Run `hera-router db upgrade` first.

    On the embedded default (the memory:// broker, which no other process can reach) this process
    also runs the workers of the router, edge, cloud and maintenance queues and beat's outbox relay
    and reconciler, so a request runs to its answer with nothing else started. On a shared broker
    (Redis, RabbitMQ) it is the producer only: run `hera-router worker` and `hera-router beat`.
    """
    import uvicorn

    from hera_router.api.app import create_app

    settings = settings_or_exit()
    priced_or_exit(settings)
    checked_runtime(settings).close()
    bind_host = host or settings.api.host
    bind_port = settings.api.port if port is None else port
    log_level = settings.log_level.lower()
    if not settings.broker_url.startswith("memory://"):
        from hera_router.api.health import broker_problem, idle_queues_problem, queue_consumers

        api = create_app(settings)
        celery_app = api.state.hera.celery
        # Serve anyway (the outbox keeps what cannot be published yet), but say so now.
        problem = broker_problem(celery_app)
        if problem is None:
            consumers = queue_consumers(celery_app)
            problem = None if consumers is None else idle_queues_problem(settings, consumers)
        if problem is not None:
            typer.secho(f"warning: {problem}", err=True, fg=typer.colors.YELLOW)
        typer.echo(f"serving the producer API on http://{bind_host}:{bind_port} (docs: /docs)")
        uvicorn.run(api, host=bind_host, port=bind_port, log_level=log_level)
        return
    import signal

    from hera_router.workers.system import embedded_system

    def stop(signum: int, _: object) -> None:
        raise SystemExit(0)

    # uvicorn handles SIGTERM while it serves, then raises it again once it has stopped: exit
    # through the block below then, so the in-process workers stop too instead of dying mid-task.
    signal.signal(signal.SIGTERM, stop)
    with embedded_system(settings, concurrency=concurrency, migrate=False) as system:
        typer.echo(
            f"serving the producer API on http://{bind_host}:{bind_port} (docs: /docs) with in-process workers "
            f"({concurrency} threads: router, edge, cloud, maintenance) and the scheduler, on the memory:// broker"
        )
        uvicorn.run(create_app(system.settings, celery=system.app), host=bind_host, port=bind_port, log_level=log_level)


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
    shared_broker_or_exit(settings, "flower")
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
    celery_app = create_app(settings)
    broker_or_exit(celery_app, consequence="Flower shows nothing without it")
    celery_app.start(["flower", *options, *ctx.args])


@app.command("beat")
def beat() -> None:
    """Run Celery beat: the outbox relay and the reconciler every few seconds. Run exactly one.

    Two beats would each schedule every entry; the tasks stay correct (idempotent, locked) but do
    the work twice. The schedule state lives in HERA_DATA_DIR/celerybeat-schedule.
    """
    from hera_router.workers import create_app

    settings = settings_or_exit()
    shared_broker_or_exit(settings, "beat")
    celery_app = create_app(settings)
    broker_or_exit(celery_app, consequence="beat exits rather than wait; start the broker or fix HERA_BROKER_URL")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir / "celerybeat-schedule"
    from hera_router.workers.supervision import run_beat

    raise typer.Exit(run_beat(celery_app, ["beat", "-l", settings.log_level, "--schedule", str(schedule)]))


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
    settings = settings_or_exit()
    shared_broker_or_exit(settings, "ping")
    celery_app = create_app(settings)
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
