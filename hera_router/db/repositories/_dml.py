"""Statement helpers the repositories share: idempotent insert, changed-row counts.

Idempotent writes (a redelivered task recording the same model call twice) must not raise: on
Postgres a failed INSERT aborts the whole transaction, so catching ``IntegrityError`` would also
throw away the caller's other work. ``ON CONFLICT DO NOTHING`` leaves the transaction intact.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast, overload

from sqlalchemy import CursorResult, Insert, Result, Row, Table, Update, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hera_router.db.base import Base
from hera_router.db.session import DEFERRED_OPTION


def table_of(model: type[Base]) -> Table:
    """The model's table, typed as one (declarative types ``__table__`` as a FromClause)."""
    return cast(Table, model.__table__)


@overload
def insert_if_absent(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_columns: Sequence[str]
) -> bool: ...


@overload
def insert_if_absent(
    session: Session,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
    *,
    returning: Sequence[Any],
) -> Row[Any] | None: ...


def insert_if_absent(
    session: Session,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
    *,
    returning: Sequence[Any] | None = None,
) -> bool | Row[Any] | None:
    """Insert one row unless it would violate the unique key on ``conflict_columns``.

    Returns True if the row was inserted, or with ``returning`` (columns) the inserted row's values
    (None on a conflict): the caller needs no second statement to learn the new row's id.
    Python-side column defaults (ids, timestamps) apply. Pending ORM changes are autoflushed
    first, so a parent row added in the same session counts.

    The statement is built once per (dialect, table, conflict key, returned columns) and executed
    as Core with the values as parameters: on the hot path, building the expression and hashing it
    into a cache key cost more than the round trip (benchmarks/results/pipeline.md).
    """
    dialect = session.get_bind().dialect.name
    mapper = model.__mapper__
    returned = tuple(returning) if returning is not None else tuple(table_of(model).primary_key)
    statement = _insert_statement(dialect, model, tuple(conflict_columns), returned)
    parameters = {mapper.columns[key].key: value for key, value in values.items()}
    # RETURNING, not rowcount: psycopg reports rowcount -1 for INSERT ... ON CONFLICT DO NOTHING.
    inserted = session.execute(statement, parameters).first()
    if returning is not None:
        return inserted
    return inserted is not None


def insert_if_absent_deferred(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_columns: Sequence[str]
) -> None:
    """:func:`insert_if_absent` for a caller that does not need to know whether the row was new:
    no ``RETURNING``, and in a pipelined transaction on Postgres (``db/session.py``) the INSERT
    goes out with the next statement or the ``COMMIT``, not in a round trip of its own."""
    dialect = session.get_bind().dialect.name
    mapper = model.__mapper__
    statement = _insert_statement(dialect, model, tuple(conflict_columns), None)
    parameters = {mapper.columns[key].key: value for key, value in values.items()}
    session.execute(statement, parameters, execution_options={DEFERRED_OPTION: True})


@functools.cache
def _insert_statement(
    dialect: str, model: type[Base], conflict_columns: tuple[str, ...], returning: tuple[Any, ...] | None
) -> Insert:
    table = table_of(model)
    mapper = model.__mapper__
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    else:  # pragma: no cover - the settings only produce these two
        raise NotImplementedError(f"idempotent insert is not implemented for the {dialect!r} dialect")
    if returning is None:
        return statement
    columns = [mapper.columns[column.key] if hasattr(column, "property") else column for column in returning]
    return statement.returning(*columns)


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (``Session.execute`` types its result loosely)."""
    return cast(CursorResult[Any], result).rowcount


@functools.cache
def guarded_update(
    table: Table,
    where: tuple[str, ...],
    values: tuple[str, ...] = (),
    *,
    status_in: bool = False,
    increments: tuple[str, ...] = (),
) -> Update:
    """``UPDATE table SET ... WHERE ...``, built once per shape and executed with parameters.

    Parameters: ``w_<column>`` for each equality in ``where``, ``w_statuses`` (a list) when
    ``status_in``, ``v_<column>`` for each value set and ``i_<column>`` for each ``column = column +
    n``. Column ``onupdate`` defaults (``updated_at``) still apply: it is a Core UPDATE.
    """
    conditions = [table.c[column] == bindparam(f"w_{column}") for column in where]
    if status_in:
        conditions.append(table.c.status.in_(bindparam("w_statuses", expanding=True)))
    assignments: dict[str, Any] = {column: bindparam(f"v_{column}") for column in values}
    assignments.update({column: table.c[column] + bindparam(f"i_{column}") for column in increments})
    return update(table).where(*conditions).values(assignments)


def run_update(session: Session, statement: Update, parameters: Mapping[str, Any]) -> int:
    """Execute a :func:`guarded_update` statement; how many rows it changed."""
    return rows_changed(session.execute(statement, dict(parameters)))
