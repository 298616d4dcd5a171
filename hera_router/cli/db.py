"""``hera-router db``: apply, revert and check the Alembic migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from hera_router.cli.base import app, mask_url, settings_or_exit

if TYPE_CHECKING:
    pass

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
