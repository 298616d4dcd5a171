"""Is the database reachable and migrated, is the broker reachable? Used by ``/healthz`` and the
CLI's start-up checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

if TYPE_CHECKING:
    from hera_router.workers.app import HeraCelery

REQUIRED_TABLES: frozenset[str] = frozenset(
    {
        "tenants",
        "api_keys",
        "batches",
        "requests",
        "subtasks",
        "decisions",
        "model_calls",
        "outbox",
        "openai_files",
        "openai_batches",
    }
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


def broker_problem(celery: HeraCelery, timeout_s: float = 2.0) -> str | None:
    """None if the broker accepts a connection within ``timeout_s``; otherwise a sentence saying so.

    One attempt, no retries: a health check that waits out kombu's back-off would time out itself.
    """
    where = maybe_sanitize_url(celery.conf.broker_url)
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout_s)
    except Exception as exc:  # kombu raises transport-specific errors
        return f"the broker at {where} is unreachable: {exc}; submissions are kept in the outbox until it is back"
    return None
