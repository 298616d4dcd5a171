"""Alembic environment for hera-router.

Where the URL comes from, first match wins: ``alembic -x url=...``; ``sqlalchemy.url`` set on the
Config in code (``hera_router.db.migrate``, the tests); ``HERA_DATABASE_URL`` via
:func:`hera_router.config.load_settings` (empty means the embedded SQLite file).

All revisions run in one transaction. On Postgres that transaction first takes an advisory lock,
so two deployers starting at once run one after the other (the second then finds nothing to do),
and runs under ``statement_timeout`` / ``lock_timeout``, so a migration stuck behind a long
query fails fast instead of queueing every request behind its lock.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, Connection, event, text

import hera_router.db.models  # noqa: F401 - importing it registers every table on Base.metadata
from hera_router.config import Settings, load_settings
from hera_router.db.base import Base, UTCDateTime
from hera_router.db.session import make_engine

MIGRATION_LOCK_ID = 0x6865726120726F75
"""Key of the Postgres advisory lock held while migrating (ASCII "hera rou")."""

target_metadata = Base.metadata

if context.config.config_file_name is not None:
    # The command-line tool logs as alembic.ini says; code calling hera_router.db.migrate keeps
    # its own logging (no ini file, so nothing is reconfigured).
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def _settings() -> Settings:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    return load_settings(database_url=url) if url else load_settings()


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the app's column types as plain SQLAlchemy types in generated revisions.

    A revision must keep working after the app code it was generated from changes, so it must
    not import ``hera_router``: ``UTCDateTime`` is ``DateTime(timezone=True)`` in the database.
    The JSON/JSONB variant is spelled out because Alembic renders ``JSONB(astext_type=Text())``
    with an unimported ``Text``.
    """
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and "postgresql" in obj._variant_mapping:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        # Naming-convention names make batch (copy-and-move) ALTERs on SQLite reproducible.
        render_as_batch=True,
        **options,
    )


def run_migrations_offline() -> None:
    """Emit the SQL to stdout (``alembic upgrade head --sql``) for review or a DBA to apply."""
    settings = _settings()
    _configure(url=settings.database_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _lock_postgres(connection: Connection, settings: Settings) -> None:
    # Wait for a concurrent deployer for as long as one statement may run, then go back to the
    # short lock timeout for the DDL itself.
    statement_ms = int(settings.db_statement_timeout_ms)
    connection.execute(text(f"SET LOCAL statement_timeout = {statement_ms}"))
    connection.execute(text(f"SET LOCAL lock_timeout = {statement_ms}"))
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
    connection.execute(text(f"SET LOCAL lock_timeout = {int(settings.db_lock_timeout_ms)}"))


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise RuntimeError(
            f"the migration left {len(violations)} rows pointing at missing parents "
            f"(first: {tuple(violations[0])}); the transaction was rolled back"
        )


def run_migrations_online() -> None:
    settings = _settings()
    engine = make_engine(settings)
    is_sqlite = engine.dialect.name == "sqlite"
    if is_sqlite:
        # Batch migrations copy a table and drop the original; with foreign keys on, that DROP
        # would cascade-delete child rows. SQLite ignores this pragma inside a transaction, so it
        # is set per connection (after make_engine's own listener) and checked after the run.
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    try:
        with engine.connect() as connection, connection.begin():
            if engine.dialect.name == "postgresql":
                _lock_postgres(connection, settings)
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
            if is_sqlite:
                _check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
