"""`hera-router tenants create`, `keys create` and `serve-api`'s start-up check, on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router.cli import app
from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import ApiKeyRepository, TenantRepository
from hera_router.db.session import make_engine, make_session_factory, session_scope


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("HERA_DATABASE_URL", database_url)
    return CliRunner()


def test_tenant_and_key_creation(runner: CliRunner, database_url: str) -> None:
    upgrade(database_url)

    created = runner.invoke(app, ["tenants", "create", "acme"])
    duplicate = runner.invoke(app, ["tenants", "create", "acme"])
    key = runner.invoke(app, ["keys", "create", "acme", "--name", "ci"])
    unknown = runner.invoke(app, ["keys", "create", "nobody"])

    assert created.exit_code == 0, created.output
    assert "created tenant 'acme'" in created.stdout
    assert duplicate.exit_code == 1
    assert "a tenant named 'acme' already exists" in duplicate.stderr
    assert key.exit_code == 0, key.output
    secret = key.stdout.strip()
    assert secret.startswith("hk_")
    assert "cannot be shown again" in key.stderr
    assert unknown.exit_code == 1
    assert "no tenant named 'nobody'; create it with `hera-router tenants create nobody`" in unknown.stderr

    engine = make_engine(load_settings(database_url=database_url))
    try:
        with session_scope(make_session_factory(engine)) as session:
            found = ApiKeyRepository(session).find_by_secret(secret)
            tenant = TenantRepository(session).by_name("acme")
            assert found is not None
            assert tenant is not None
            assert (found.tenant_id, found.name) == (tenant.id, "ci")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "command",
    [["tenants", "create", "acme"], ["keys", "create", "acme"], ["serve-api", "--port", "0"]],
)
def test_unmigrated_database_is_a_clear_error(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, command)

    assert result.exit_code == 2
    assert "has no hera-router schema" in result.stderr
    assert "run `hera-router db upgrade` first" in result.stderr
