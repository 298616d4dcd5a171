"""The operator's commands on a SQLite file: `tenants list`, `keys list|revoke|limit`,
`request show|cancel`, `batch cancel`, and the refusal to start a worker or the API on a cloud
model with no price."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hera_router.api.app import create_app
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.cli import app
from hera_router.config import BackendSettings, SettingsError, load_settings
from hera_router.db.enums import RequestStatus
from hera_router.db.migrate import upgrade
from hera_router.db.models import Request
from hera_router.db.repositories import ApiKeyRepository, BatchRepository, RequestRepository
from hera_router.db.session import make_engine, make_session_factory, session_scope


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(load_settings(database_url=database_url))
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("HERA_DATABASE_URL", database_url)
    return CliRunner()


def test_tenants_and_keys_are_listed_revoked_and_limited(runner: CliRunner, sessions: sessionmaker[Session]) -> None:
    empty = runner.invoke(app, ["tenants", "list"])
    create_tenant(sessions, "acme")
    create_tenant(sessions, "globex")
    key, secret = create_api_key(sessions, "acme", "ci")

    tenants = runner.invoke(app, ["tenants", "list"])
    keys = runner.invoke(app, ["keys", "list", "acme"])
    none = runner.invoke(app, ["keys", "list", "globex"])
    unknown = runner.invoke(app, ["keys", "list", "nobody"])
    limited = runner.invoke(app, ["keys", "limit", str(key.id), "--rpm", "30", "--tpm", "0"])
    shown = runner.invoke(app, ["keys", "limit", str(key.id)])
    bad_limit = runner.invoke(app, ["keys", "limit", str(key.id), "--rpm", "-5"])
    revoked = runner.invoke(app, ["keys", "revoke", str(key.id)])
    again = runner.invoke(app, ["keys", "revoke", str(key.id)])
    not_an_id = runner.invoke(app, ["keys", "revoke", "hk_abc"])
    after = runner.invoke(app, ["keys", "list", "acme"])

    assert "no tenants yet" in empty.stdout
    assert tenants.exit_code == 0, tenants.output
    assert "acme" in tenants.stdout
    assert "globex" in tenants.stdout
    assert keys.exit_code == 0, keys.output
    assert str(key.id) in keys.stdout
    assert secret[:12] in keys.stdout
    assert "never" in keys.stdout
    assert secret not in keys.stdout
    assert "has no keys" in none.stdout
    assert unknown.exit_code == 1
    assert "no tenant named 'nobody'" in unknown.stderr
    assert limited.exit_code == 0, limited.output
    assert "requests 30 per minute (own), tokens unlimited (own)" in limited.stdout
    assert "requests 30 per minute (own)" in shown.stdout  # no option: shown, unchanged
    assert bad_limit.exit_code == 1
    assert "must be 0 (unlimited) or more" in bad_limit.stderr
    assert revoked.exit_code == 0
    assert "revoked API key 'ci'" in revoked.stdout
    assert again.exit_code == 1
    assert "already revoked" in again.stderr
    assert not_an_id.exit_code == 2
    assert "is not a key id" in not_an_id.stderr
    assert after.exit_code == 0
    assert str(key.id) in after.stdout  # a revoked key stays listed, with its revocation time
    with session_scope(sessions) as session:
        assert ApiKeyRepository(session).find_by_secret(secret) is None
        row = ApiKeyRepository(session).get(key.id)
        assert row is not None
        assert (row.requests_per_minute, row.tokens_per_minute) == (30, 0)


def test_requests_are_shown_and_cancelled_and_batches_cancelled(
    runner: CliRunner, sessions: sessionmaker[Session]
) -> None:
    tenant = create_tenant(sessions, "acme")
    with session_scope(sessions) as session:
        requests = RequestRepository(session)
        batch = BatchRepository(session).create(tenant_id=tenant.id, policy="all-llm")
        queued = requests.add(tenant_id=tenant.id, input="What is 2 + 3?", policy="all-llm").id
        finished = requests.add(tenant_id=tenant.id, input="What is 4 + 4?", policy="all-llm").id
        in_batch = [
            requests.add(tenant_id=tenant.id, input=f"q{n}", policy="all-llm", batch_id=batch.id).id for n in range(3)
        ]
        session.execute(
            update(Request).where(Request.id == finished).values(status=RequestStatus.SUCCEEDED, final_answer="8")
        )
        batch_id = batch.id

    shown = runner.invoke(app, ["request", "show", str(finished)])
    as_json = runner.invoke(app, ["request", "show", str(queued), "--json"])
    cancelled = runner.invoke(app, ["request", "cancel", str(queued)])
    refused = runner.invoke(app, ["request", "cancel", str(finished)])
    missing = runner.invoke(app, ["request", "show", str(uuid.uuid4())])
    batch_cancelled = runner.invoke(app, ["batch", "cancel", str(batch_id)])
    batch_again = runner.invoke(app, ["batch", "cancel", str(batch_id)])
    openai_batch = runner.invoke(app, ["batch", "cancel", "batch_0123"])

    assert shown.exit_code == 0, shown.output
    assert f"request {finished}: succeeded" in shown.stdout
    assert "answer: 8" in shown.stdout
    assert as_json.exit_code == 0
    assert '"input": "What is 2 + 3?"' in as_json.stdout
    assert cancelled.exit_code == 0
    assert f"request {queued}: cancelled" in cancelled.stdout
    assert refused.exit_code == 1
    assert "has already succeeded" in refused.stderr
    assert missing.exit_code == 1
    assert "no agent request" in missing.stderr
    assert batch_cancelled.exit_code == 0
    assert "cancelled 3 unfinished requests" in batch_cancelled.stdout
    assert "cancelled 0 unfinished requests" in batch_again.stdout
    assert openai_batch.exit_code == 1
    assert "/v1/admin/batches/batch_0123/cancel" in openai_batch.stderr
    with session_scope(sessions) as session:
        statuses = {row.id: row.status for row in RequestRepository(session).list_by_ids([queued, finished, *in_batch])}
    assert statuses[queued] is RequestStatus.CANCELLED
    assert statuses[finished] is RequestStatus.SUCCEEDED
    assert {statuses[request_id] for request_id in in_batch} == {RequestStatus.CANCELLED}


def test_a_worker_and_the_api_refuse_an_unpriced_cloud_model(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("HERA_BROKER_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("HERA_CLOUD__BACKEND", "openai")
    monkeypatch.setenv("HERA_CLOUD__URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("HERA_CLOUD__MODEL", "gpt-unpriced")

    refused = runner.invoke(app, ["worker", "-Q", "cloud"])

    assert refused.exit_code == 2
    assert "the cloud model 'gpt-unpriced' (HERA_CLOUD) has no price" in refused.stderr
    assert "HERA_PRICES=" in refused.stderr
    assert "HERA_CLOUD__ALLOW_UNPRICED=true" in refused.stderr
    assert "Traceback" not in refused.output
    cloud = BackendSettings(backend="openai", url="http://127.0.0.1:9/v1", model="gpt-unpriced")
    with pytest.raises(SettingsError, match="has no price"):
        create_app(load_settings(database_url=database_url, broker_url="memory://", cloud=cloud))
    allowed = create_app(
        load_settings(
            database_url=database_url, broker_url="memory://", cloud=cloud.model_copy(update={"allow_unpriced": True})
        )
    )
    allowed.state.hera.close()
