"""`hera-router tenants budget` and `hera-router costs` on a SQLite file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hera_router.cli import app
from hera_router.config import load_settings
from hera_router.db.enums import CallStatus, ModelRole
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import ModelCallRepository, RequestRepository, TenantRepository
from hera_router.db.session import make_engine, make_session_factory, session_scope


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("HERA_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")  # rich would shorten the table's numbers to a test's 80 columns
    return CliRunner()


def _spend(database_url: str, tenant: str, usd: float, role: ModelRole) -> None:
    engine = make_engine(load_settings(database_url=database_url))
    try:
        with session_scope(make_session_factory(engine)) as session:
            row = TenantRepository(session).by_name(tenant)
            assert row is not None
            request = RequestRepository(session).add(tenant_id=row.id, input="x", policy="all-llm")
            calls = ModelCallRepository(session)
            key = uuid.uuid4().hex
            calls.start(
                idempotency_key=key,
                request_id=request.id,
                subtask_id=None,
                backend="sim",  # type: ignore[arg-type]
                model=f"sim-{role.value}",
                role=role,
                estimated_cost_usd=usd,
            )
            components = {"tokens_cost_usd": usd} if role is ModelRole.CLOUD else {"gpu_cost_usd": usd}
            calls.finish(key, status=CallStatus.OK, latency_ms=1.0, cost_usd=usd, components=components)
    finally:
        engine.dispose()


def test_budget_set_show_and_costs_as_table_and_csv(runner: CliRunner, database_url: str) -> None:
    assert runner.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    shown = runner.invoke(app, ["tenants", "budget", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "daily budget none" in shown.stdout
    assert "over budget: stop" in shown.stdout

    set_ = runner.invoke(app, ["tenants", "budget", "acme", "--daily", "2.5", "--action", "cheapest"])
    assert set_.exit_code == 0, set_.output
    assert "daily budget $2.500000" in set_.stdout
    assert "over budget: cheapest" in set_.stdout
    zero = runner.invoke(app, ["tenants", "budget", "acme", "--monthly", "0"])
    assert zero.exit_code == 1
    assert "would refuse every request" in zero.stderr
    wrong = runner.invoke(app, ["tenants", "budget", "acme", "--action", "pause"])
    assert wrong.exit_code == 2

    _spend(database_url, "acme", 0.25, ModelRole.CLOUD)
    _spend(database_url, "acme", 0.125, ModelRole.EDGE)
    table = runner.invoke(app, ["costs", "--tenant", "acme", "--since", "2000-01-01"])
    assert table.exit_code == 0, table.output
    assert "0.375000" in table.stdout  # the total
    assert "0.250000" in table.stdout  # the paper's cost (cloud tokens only)
    csv = runner.invoke(app, ["costs", "--tenant", "acme", "--csv"])
    assert csv.exit_code == 0, csv.output
    header, *lines = csv.stdout.splitlines()
    assert header.startswith("day,role,model,calls,tokens_usd,gpu_usd")
    assert sorted(line.split(",")[1] for line in lines) == ["cloud", "edge"]
    bad = runner.invoke(app, ["costs", "--tenant", "acme", "--since", "yesterday"])
    assert bad.exit_code == 2
    unknown = runner.invoke(app, ["costs", "--tenant", "nobody"])
    assert unknown.exit_code == 1
    assert "no tenant named 'nobody'" in unknown.stderr
