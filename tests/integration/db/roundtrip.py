"""Read a row back from the database and compare it with what was written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session


def column_values(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def assert_round_trip(session: Session, row: Any) -> Any:
    """Flush ``row``, forget it, load it again by primary key and compare every column.

    Returns the reloaded row. Datetimes must come back timezone-aware and equal to what was
    written (same instant), on SQLite as on Postgres.
    """
    session.flush()
    written = column_values(row)
    model = type(row)
    key = inspect(row).identity
    session.expunge_all()
    loaded = session.get(model, key)
    assert loaded is not None, f"{model.__name__} {key} not found after flush"
    read = column_values(loaded)
    assert read == written
    for name, value in read.items():
        if isinstance(value, datetime):
            assert value.tzinfo is not None, f"{model.__name__}.{name} came back naive: {value!r}"
    return loaded
