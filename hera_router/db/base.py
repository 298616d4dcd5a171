"""The declarative base and the column types every table shares.

One schema runs on Postgres (production) and SQLite (embedded mode), so the portable choices are
made here once: UUID keys (native ``uuid`` on Postgres, ``CHAR(32)`` on SQLite), UTC-aware
timestamps, enums stored by value as ``VARCHAR`` plus a named CHECK (no Postgres ``ENUM`` types,
which cannot be altered inside a transaction), and JSON that is ``JSONB`` where it exists.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Double, Enum, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so Alembic can drop and alter them by name on both databases."""

ENUM_LENGTH = 32
"""Width of every enum column: room for new values without widening the column."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of datetime the schema accepts)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always hands back aware UTC datetimes.

    Postgres stores the instant and returns it aware. SQLite has no timezone support: it keeps the
    text SQLAlchemy writes and reads it back naive. Binding converts to UTC first (so the stored
    text is UTC), and reading attaches UTC, so callers see the same aware value on both databases.
    Naive datetimes are refused at bind time: their meaning depends on the host clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the database; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on Postgres (indexable, compact, compares equal regardless of key order)."""


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    """The stored representation of ``enum_cls``: its values, not its member names."""
    return [str(member.value) for member in enum_cls]


def value_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum column type stored by value, with a CHECK named ``ck_<table>_<name>``.

    ``native_enum=False`` keeps it a ``VARCHAR`` on Postgres too: adding a value is then a CHECK
    swap in a normal migration rather than ``ALTER TYPE``, and SQLite behaves the same way.
    """
    return Enum(
        enum_cls,
        name=name,
        values_callable=enum_values,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base for every table; its ``metadata`` is what Alembic compares against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - read by SQLAlchemy at class creation, never mutated
        uuid.UUID: Uuid(),
        float: Double(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class UUIDPrimaryKey:
    """A random UUID key, generated client-side so callers know the id before flushing.

    ``sort_order`` puts ``id`` first and the timestamps last in ``CREATE TABLE``.
    """

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-100)


class CreatedAt:
    """``created_at`` for append-only rows, set from the application clock in UTC.

    Client-side defaults (no server defaults) keep the two databases identical.
    """

    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=100)


class Timestamps(CreatedAt):
    """``created_at`` / ``updated_at`` for rows that change.

    ``onupdate`` also fires for Core ``UPDATE`` statements, so guarded transitions bump
    ``updated_at`` too, which is what the reconciler measures progress by.
    """

    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=101)
