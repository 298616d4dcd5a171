"""Is the database reachable and migrated? Used by ``/healthz`` and the CLI's start-up checks."""

from __future__ import annotations

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

REQUIRED_TABLES: frozenset[str] = frozenset(
    {"tenants", "api_keys", "batches", "requests", "subtasks", "decisions", "model_calls", "outbox"}
)
"""The tables the producer reads and writes."""


def database_problem(engine: Engine) -> str | None:
    """None if the database answers and has the producer's tables; otherwise a sentence saying
    what is wrong and what to do."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    except DBAPIError as exc:  # the driver's own message says why (refused, auth, unknown database)
        return f"the database at {where} is unreachable: {str(exc.orig).strip()}"
    except SQLAlchemyError as exc:
        return f"the database at {where} is unreachable: {exc}"
    missing = REQUIRED_TABLES - tables
    if missing:
        return (
            f"the database at {where} has no hera-router schema (missing tables: {', '.join(sorted(missing))}); "
            "run `hera-router db upgrade` first"
        )
    return None
