"""Fixtures shared by every suite: offline model loading and throw-away Postgres databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Models come only from PyPI packages: a hub lookup must fail at once, never hang on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests train estimators beside their own workers on a shared machine: at a lowered priority their
# duration would depend on whatever else runs there. tests/unit/training/test_priority.py covers it.
os.environ.setdefault("HERA_ESTIMATORS__TRAINING_PRIORITY", "normal")


@pytest.fixture(scope="session", autouse=True)
def shared_onnx_encoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One exported SBERT graph for the whole run (and the next: pytest's cache), not one per
    test's data dir; worker subprocesses inherit the setting."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    folder = cache.mkdir("hera-onnx") if cache is not None else tmp_path_factory.mktemp("onnx")
    saved = os.environ.get("HERA_ESTIMATORS__ONNX_DIR")
    os.environ.setdefault("HERA_ESTIMATORS__ONNX_DIR", str(folder))
    yield
    if saved is None:
        os.environ.pop("HERA_ESTIMATORS__ONNX_DIR", None)


POSTGRES_ADMIN_URL = os.environ.get("HERA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HERA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("HERA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@contextmanager
def fresh_postgres_database(prefix: str = "hera_test") -> Iterator[str]:
    """Create an empty database on the local server, yield its URL, drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_postgres_url() -> Iterator[str]:
    """One Postgres database for the session, migrated to head."""
    from hera_router.db.migrate import upgrade

    with fresh_postgres_database() as url:
        upgrade(url)
        yield url
