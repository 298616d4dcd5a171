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


if __name__ == "__main__":
    app()
