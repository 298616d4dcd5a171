"""The ``hera-router`` app itself and what every command group shares: settings, runtimes, output.

Heavy imports (torch, transformers, celery) stay inside the command that needs them so that
``hera-router --help`` stays instant.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import TYPE_CHECKING, Any

import typer

from hera_router.config import Settings, SettingsError, load_settings, mask_url

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.exc import DBAPIError

    from hera_router.db.runtime import Runtime
    from hera_router.training.bootstrap import BootstrapPlan
    from hera_router.workers.app import HeraCelery


class HeraTyper(typer.Typer):
    """The Typer app, with one readable sentence instead of a traceback for what a person fixes
    from outside the code: an unreachable or unmigrated database, a broker that is down, bad
    settings. Anything else still raises with its traceback (that is a bug to report)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            sentence = explain(exc)
            if sentence is None:
                raise
            typer.secho(sentence, err=True, fg=typer.colors.RED)
            sys.exit(2)


app = HeraTyper(
    name="hera-router",
    help="Route each step of an AI agent between an edge SLM and a cloud LLM (HERA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would take "[default: ...]" in a help text for a tag and drop it.
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"hera-router {version('hera-router')}")
        raise typer.Exit()


@app.callback()
def main(
    _: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """hera-router: configuration comes from HERA_* environment variables (see README)."""
    quiet_libraries()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _where_database() -> str:
    try:
        return mask_url(load_settings().database_url)
    except SettingsError:
        return "HERA_DATABASE_URL"


def _where_broker() -> str:
    try:
        return mask_url(load_settings().broker_url)
    except SettingsError:
        return "HERA_BROKER_URL"


MISSING_SCHEMA_MARKERS = ("no such table", "undefinedtable", "does not exist")


def _database_sentence(error: DBAPIError) -> str:
    text = " ".join(str(error.orig).split())
    kind = type(error.orig).__name__
    where = _where_database()
    if any(marker in f"{kind} {text}".lower() for marker in MISSING_SCHEMA_MARKERS):
        return f"the database at {where} has no hera-router schema ({text}); run `hera-router db upgrade` first"
    if "connect" in text.lower() or "unable to open" in text.lower():
        return f"the database at {where} is unreachable: {text}"
    return f"the database at {where} failed: {text}"


def explain(exc: BaseException) -> str | None:
    """The sentence a person can act on for ``exc`` (or anything it was raised from), or None
    when it is not a configuration or availability problem."""
    from alembic.util.exc import CommandError
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    sentences: list[str] = []
    for error in _chain(exc):
        if isinstance(error, SettingsError):
            sentences.append(str(error))
        elif isinstance(error, DBAPIError):
            sentences.append(_database_sentence(error))
        elif isinstance(error, (NoSuchModuleError, ArgumentError)):
            sentences.append(f"HERA_DATABASE_URL is not a usable database URL: {error}")
        elif isinstance(error, BrokerError):
            sentences.append(f"the broker at {_where_broker()} is unreachable: {' '.join(str(error).split())}")
        elif isinstance(error, CommandError):
            sentences.append(f"migrations: {' '.join(str(error).split())}")
    return sentences[0] if sentences else None


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


def is_simulated(settings: Settings) -> bool:
    return settings.edge.backend == "sim" or settings.cloud.backend == "sim"


def world_label(settings: Settings) -> str:
    """What a results table's title says about where its numbers come from."""
    edge, cloud = settings.edge.backend == "sim", settings.cloud.backend == "sim"
    if edge and cloud:
        return " (simulated world)"
    if cloud:
        return " (REAL EDGE MODEL / SIMULATED CLOUD)"
    return " (simulated edge model)" if edge else ""


def checked_runtime(settings: Settings) -> Runtime:
    """The database runtime, or a clear exit if the database is down or was never migrated.

    The producer never migrates on its own: `hera-router db upgrade` is an explicit step, so an
    API pointed at the wrong database says so instead of creating tables there.
    """
    from hera_router.api.health import database_problem
    from hera_router.db.runtime import Runtime

    runtime = Runtime(settings)
    problem = database_problem(runtime.engine)
    if problem is not None:
        runtime.close()
        typer.secho(problem, err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    return runtime


SHARED_BROKER_HELP = (
    "set HERA_BROKER_URL=redis://127.0.0.1:6379/0 (or HERA_MODE=distributed, which uses HERA_REDIS_URL) "
    "in every process, or use `hera-router serve-api` or `hera-router run`, which run their own workers"
)


def shared_broker_or_exit(settings: Settings, command: str) -> None:
    """Exit with a sentence when the broker is ``memory://``: a process that talks to other
    processes through the broker (a worker, beat, Flower, ``submit``) would start and then
    wait forever on a queue nobody else can see."""
    if settings.broker_url.startswith("memory://"):
        typer.secho(
            f"`hera-router {command}` needs a broker other processes share, but the broker is memory:// "
            f"(the embedded default, private to one process): {SHARED_BROKER_HELP}",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=2)


def broker_or_exit(celery: HeraCelery, consequence: str = "") -> None:
    """Exit with the broker's problem as one sentence (and ``consequence``, what the command
    does about it) when it does not accept a connection."""
    from hera_router.api.health import broker_problem

    problem = broker_problem(celery, consequence=consequence)
    if problem is not None:
        typer.secho(problem, err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)


def migrated_runtime(settings: Settings) -> Runtime:
    """A runtime on a migrated database (embedded SQLite is migrated here, like `run` does)."""
    from hera_router.db.migrate import upgrade

    if not settings.is_postgres:
        upgrade(settings.database_url)
    return checked_runtime(settings)


def parse_run_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a profile run id (a UUID)", param_hint="--profile") from None


def ensure_estimators(settings: Settings, policies: Sequence[str] = ()) -> None:
    """Bootstrap when no complete set of estimators is active (what `run --policy hera` needs).

    Only on the simulated backends. With real ones nothing is profiled unasked: when every policy
    that needs estimators is `hera` with cold start on, it routes in cold-start mode and says so;
    otherwise it exits with a sentence saying to run `hera-router bootstrap`, which shows the plan
    and asks for a confirmation.
    """
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import ESTIMATOR_NAMES
    from hera_router.training.bootstrap import unattended_problem

    runtime = migrated_runtime(settings)
    try:
        with session_scope(runtime.sessions) as session:
            active = {row.name for row in EstimatorVersionRepository(session).all_active()}
        # Without a calibration HERA still routes (the paper's constants); anything else missing,
        # including the divergence estimator of an older data dir, means bootstrapping again.
        missing = [name for name in ESTIMATOR_NAMES if name not in active]
        if missing:
            what = f"no active {', '.join(missing)} estimator{'s' if len(missing) > 1 else ''}"
            refusal = unattended_problem(settings)
            if refusal is not None and _cold_starts(settings, policies):
                typer.echo(
                    f"{what}: `hera` routes in cold-start mode (every step on the SLM, kept when its mean "
                    f"token logprob reaches {settings.routing.cold_start_threshold}, else re-run on the cloud); "
                    "`hera-router bootstrap` shows the plan to train the estimators"
                )
                return
            if refusal is not None:
                typer.secho(f"{what}; {refusal}", err=True, fg=typer.colors.RED)
                raise typer.Exit(code=2)
            typer.echo(f"{what}: running `hera-router bootstrap` first (a few minutes, once per data dir)")
            bootstrap_with_progress(runtime)
    finally:
        runtime.close()


def _cold_starts(settings: Settings, policies: Sequence[str]) -> bool:
    """Whether every estimator policy asked for can route without estimators (cold-start `hera`)."""
    from hera_router.routing.registry import needs_estimators

    routing = settings.routing
    wanted = [name for name in (policies or [routing.policy]) if needs_estimators(name)]
    return bool(wanted) and all(name == "hera" for name in wanted) and routing.cold_start and routing.use_verify


# --- continual fine-tuning (training/continual.py, docs/continual.md) ---------------------------


def bootstrap_with_progress(
    runtime: Runtime, *, plan: BootstrapPlan | None = None, budget_usd: float | None = None
) -> None:
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
            budget_usd=budget_usd,
            plan=plan,
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
    if plan is not None:
        planned = {role: sum(stage.usage[role].calls for stage in plan.stages) for role in ("edge", "cloud")}
        typer.echo(
            "profiling calls: "
            + ", ".join(f"{role} {result.calls.get(role, 0)} (planned {planned[role]})" for role in planned)
            + f"; spent ${result.spent_usd:.2f} on them"
        )
    if result.stopped is not None:
        typer.secho(f"stopped short: {result.stopped}", fg=typer.colors.YELLOW)
    world = " (simulated)" if is_simulated(runtime.settings) else ""
    typer.echo(
        f"profile run {result.run_id}: {result.requests} requests{world}; "
        f"bootstrap took {time.perf_counter() - started:.0f} s"
    )
    if not result.trained:
        raise typer.Exit(code=1)
