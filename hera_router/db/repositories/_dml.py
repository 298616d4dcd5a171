"""Statement helpers the repositories share: idempotent insert, changed-row counts.

Idempotent writes (a redelivered task recording the same model call twice) must not raise: on
Postgres a failed INSERT aborts the whole transaction, so catching ``IntegrityError`` would also
throw away the caller's other work. ``ON CONFLICT DO NOTHING`` leaves the transaction intact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast, overload

from sqlalchemy import CursorResult, Insert, Result, Row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hera_router.db.base import Base


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
    """
    dialect = session.get_bind().dialect.name
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    elif dialect == "sqlite":
        statement = sqlite.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    else:  # pragma: no cover - the settings only produce these two
        raise NotImplementedError(f"idempotent insert is not implemented for the {dialect!r} dialect")
    # RETURNING, not rowcount: psycopg reports rowcount -1 for INSERT ... ON CONFLICT DO NOTHING.
    if returning is not None:
        return session.execute(statement.returning(*returning)).first()
    inserted = session.execute(statement.returning(*model.__table__.primary_key)).first()
    return inserted is not None


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (``Session.execute`` types its result loosely)."""
    return cast(CursorResult[Any], result).rowcount
