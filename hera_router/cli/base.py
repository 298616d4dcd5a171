"""The ``hera-router`` app itself and what every command group shares: settings, runtimes, output.

Heavy imports (torch, transformers, celery) stay inside the command that needs them so that
``hera-router --help`` stays instant.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING

import typer

from hera_router.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from hera_router.db.runtime import Runtime
    from hera_router.training.bootstrap import BootstrapPlan

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


def is_simulated(settings: Settings) -> bool:
    return settings.edge.backend == "sim" or settings.cloud.backend == "sim"


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


def ensure_estimators(settings: Settings) -> None:
    """Bootstrap when no complete set of estimators is active (what `run --policy hera` needs).

    Only on the simulated backends: with real ones it exits with a sentence saying to run
    `hera-router bootstrap`, which shows the plan and asks for a confirmation.
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
            if refusal is not None:
                typer.secho(f"{what}; {refusal}", err=True, fg=typer.colors.RED)
                raise typer.Exit(code=2)
            typer.echo(f"{what}: running `hera-router bootstrap` first (a few minutes, once per data dir)")
            bootstrap_with_progress(runtime)
    finally:
        runtime.close()


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
