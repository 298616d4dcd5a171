"""Is the database reachable and migrated, is the broker reachable, does every queue have a
consumer? Used by ``/healthz``, ``hera-router status`` and the CLI's start-up checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from hera_router.pipeline.queues import Queue, physical_name

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.workers.app import HeraCelery

PIPELINE_QUEUES: tuple[Queue, ...] = (Queue.ROUTER, Queue.EDGE, Queue.CLOUD)
"""The queues every request passes through: with one of them unconsumed, requests stay queued."""

INSPECT_TIMEOUT_S = 1.0
"""How long a consumer check waits for the workers' answers (every live worker answers at once)."""

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
        return f"the database at {where} is unreachable: {' '.join(str(exc.orig).split())}"
    except SQLAlchemyError as exc:
        return f"the database at {where} is unreachable: {exc}"
    missing = REQUIRED_TABLES - tables
    if missing:
        return (
            f"the database at {where} has no hera-router schema (missing tables: {', '.join(sorted(missing))}); "
            "run `hera-router db upgrade` first"
        )
    return None


def broker_problem(
    celery: HeraCelery,
    timeout_s: float = 2.0,
    consequence: str = "submissions are kept in the outbox until it is back",
) -> str | None:
    """None if the broker accepts a connection within ``timeout_s``; otherwise a sentence saying so
    (and ``consequence``, what that means for the caller).

    One attempt, no retries: a health check that waits out kombu's back-off would time out itself.
    """
    where = maybe_sanitize_url(celery.conf.broker_url)
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout_s)
    except Exception as exc:  # kombu raises transport-specific errors
        reason = " ".join(str(exc).split()).rstrip(".")
        return f"the broker at {where} is unreachable: {reason}" + (f"; {consequence}" if consequence else "")
    return None


def queue_consumers(celery: HeraCelery, timeout_s: float = INSPECT_TIMEOUT_S) -> dict[str, list[str]] | None:
    """Each queue this deployment declares → the worker nodes consuming it now (empty: nobody).

    The workers say it themselves, answering a broadcast over the broker (what ``celery inspect
    active_queues`` does), so a worker whose process lives but no longer consumes is not counted.
    None when the broker cannot be asked.
    """
    names = [queue.name for queue in celery.conf.task_queues or ()]
    try:
        # One reply per worker, kept apart: `inspect` would merge two workers that share a node
        # name (two `hera-router worker` without `-n` on one host) into one, losing a consumer.
        replies = celery.control.broadcast("active_queues", reply=True, timeout=timeout_s) or []
    except Exception:  # kombu raises transport-specific errors; broker_problem says which
        return None
    consumers: dict[str, list[str]] = {name: [] for name in names}
    for reply in replies:
        for node, queues in reply.items():
            for queue in queues if isinstance(queues, list) else ():
                # Only this deployment's queues: a shared broker may carry other deployments' too.
                if queue.get("name") in consumers:
                    consumers[queue["name"]].append(node)
    return {name: sorted(nodes) for name, nodes in consumers.items()}


def idle_queues_problem(settings: Settings, consumers: dict[str, list[str]]) -> str | None:
    """A sentence naming the pipeline queues nobody consumes (requests would stay queued), or None."""
    idle = [
        name
        for name in dict.fromkeys(physical_name(queue, settings.queues) for queue in PIPELINE_QUEUES)
        if not consumers.get(name)
    ]
    if not idle:
        return None
    if settings.broker_url.startswith("memory://"):
        fix = "on the memory:// broker only workers inside this process consume: start it with `hera-router serve-api`"
    else:
        fix = f"start `hera-router worker -Q {','.join(idle)}` on this broker"
    return f"no worker consumes the {', '.join(idle)} queue{'s' if len(idle) > 1 else ''}: requests stay queued; {fix}"
