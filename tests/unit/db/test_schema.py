"""Schema conventions that need no database: names, enum storage, timestamps, revisions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import CheckConstraint, Dialect, Enum
from sqlalchemy.dialects import postgresql, sqlite

from hera_router.db.base import Base, UTCDateTime
from hera_router.db.migrate import MIGRATIONS_DIR
from hera_router.db.repositories.tenants import KEY_PREFIX, hash_secret

DIALECTS: list[Dialect] = [sqlite.dialect(), postgresql.dialect()]


def test_every_constraint_and_index_is_named_by_convention() -> None:
    prefixes = {"PrimaryKeyConstraint": "pk_", "ForeignKeyConstraint": "fk_", "UniqueConstraint": "uq_"}
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            kind = type(constraint).__name__
            if isinstance(constraint, CheckConstraint):
                # Enum CHECKs are named when the table is created, from the type's name.
                continue
            assert constraint.name, f"unnamed {kind} on {table.name}"
            assert str(constraint.name).startswith(prefixes[kind]), (table.name, constraint.name)
        for index in table.indexes:
            assert str(index.name).startswith(("ix_", "uq_")), (table.name, index.name)


def test_enum_columns_store_values_with_a_named_check() -> None:
    enum_columns = [
        column for table in Base.metadata.tables.values() for column in table.columns if isinstance(column.type, Enum)
    ]
    assert enum_columns
    for column in enum_columns:
        enum_type = column.type
        assert isinstance(enum_type, Enum)
        assert enum_type.enum_class is not None
        assert enum_type.enums == [member.value for member in enum_type.enum_class]
        assert enum_type.native_enum is False
        assert enum_type.create_constraint is True
        assert enum_type.name, f"{column.table.name}.{column.name} needs a name for its CHECK"


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_timestamps_are_stored_in_utc_and_read_back_aware(dialect: Dialect) -> None:
    decorator = UTCDateTime()
    berlin = datetime(2026, 11, 27, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    stored = decorator.process_bind_param(berlin, dialect)
    assert stored == berlin
    assert stored is not None
    assert stored.tzinfo is UTC

    read = decorator.process_result_value(datetime(2026, 11, 27, 12, 0), dialect)  # noqa: DTZ001
    assert read == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    with pytest.raises(ValueError, match="naive datetime"):
        decorator.process_bind_param(datetime(2026, 11, 27), dialect)  # noqa: DTZ001


def test_revisions_are_date_prefixed_and_independent_of_the_app() -> None:
    revisions = sorted((MIGRATIONS_DIR / "versions").glob("*.py"))
    assert revisions
    for path in revisions:
        assert re.fullmatch(r"\d{8}_\d{4}_\w+\.py", path.name), path.name
        # A revision must run the same way after the models change: no app imports.
        assert "hera_router" not in path.read_text(), f"{path.name} imports application code"


def test_api_key_hash_is_sha256_hex() -> None:
    digest = hash_secret(KEY_PREFIX + "secret")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest != hash_secret(KEY_PREFIX + "secreT")
