"""The operator's admin routes and per-key rate limits, over real HTTP on SQLite and Postgres
(and, for the shared limiter, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import update

from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.config import Settings
from hera_router.db.enums import RequestStatus
from hera_router.db.models import Request
from hera_router.db.repositories import ApiKeyRepository
from hera_router.db.session import session_scope
from tests.integration.api.conftest import LIMITS, RunningApi, TenantKey, api_settings, new_tenant, running_api

ADMIN = "admin-secret-token"
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def admin_api(database_url: str) -> Iterator[RunningApi]:
    with running_api(api_settings(database_url, api=LIMITS | {"admin_token": ADMIN})) as running:
        yield running


@pytest.fixture
def admin(admin_api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_api.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as http:
        yield http


def as_tenant(api: RunningApi, key: TenantKey) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key.secret}"}, timeout=30)


def test_tenants_and_keys_are_listed_without_secrets_and_a_revoked_key_stops_working(
    admin_api: RunningApi, admin: httpx.Client
) -> None:
    tenant = new_tenant(admin_api)
    _, second = create_api_key(admin_api.sessions, tenant.name, "ci")
    with as_tenant(admin_api, tenant) as client:
        assert client.get("/v1/budget").status_code == 200

    tenants = admin.get("/v1/admin/tenants")
    keys = admin.get(f"/v1/admin/tenants/{tenant.name}/keys")

    assert tenants.status_code == 200, tenants.text
    listed = next(row for row in tenants.json() if row["name"] == tenant.name)
    assert (listed["live_keys"], listed["keys"]) == (2, 2)
    assert keys.status_code == 200, keys.text
    rows = keys.json()
    assert [row["name"] for row in rows] == ["default", "ci"]
    assert rows[0]["prefix"] == tenant.secret[:12]
    assert rows[0]["last_used_at"] is not None  # it authenticated the budget read
    assert rows[1]["last_used_at"] is None
    assert tenant.secret not in keys.text
    assert second not in keys.text
    assert "key_hash" not in keys.text

    revoked = admin.post(f"/v1/admin/keys/{rows[0]['id']}/revoke")
    again = admin.post(f"/v1/admin/keys/{rows[0]['id']}/revoke")
    missing = admin.post(f"/v1/admin/keys/{uuid.uuid4()}/revoke")
    with as_tenant(admin_api, tenant) as client:
        after = client.get("/v1/budget")
    with httpx.Client(base_url=admin_api.url, headers={"Authorization": f"Bearer {second}"}) as other:
        still = other.get("/v1/budget")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert again.status_code == 409
    assert "already revoked" in again.json()["error"]
    assert missing.status_code == 404
    assert after.status_code == 401
    assert still.status_code == 200
    assert admin.get("/v1/admin/tenants/nobody-at-all/keys").status_code == 404


def test_admin_routes_need_the_admin_token(admin_api: RunningApi) -> None:
    tenant = new_tenant(admin_api)
    with as_tenant(admin_api, tenant) as client:
        assert client.get("/v1/admin/tenants").status_code == 403
    with httpx.Client(base_url=admin_api.url) as anonymous:
        assert anonymous.get("/v1/admin/tenants").status_code == 401


def test_operator_shows_and_cancels_any_tenants_request_and_batch(admin_api: RunningApi, admin: httpx.Client) -> None:
    tenant = new_tenant(admin_api)
    with as_tenant(admin_api, tenant) as client:
        one = client.post("/v1/agent-requests", json={"input": "What is 2 + 3?"}).json()["id"]
        done = client.post("/v1/agent-requests", json={"input": "What is 4 + 4?"}).json()["id"]
        batch = client.post("/v1/agent-batches", json=[{"input": "a?"}, {"input": "b?"}]).json()["id"]
    with session_scope(admin_api.sessions) as session:  # as a worker would finish it
        session.execute(
            update(Request)
            .where(Request.id == uuid.UUID(done))
            .values(status=RequestStatus.SUCCEEDED, final_answer="8")
        )

    shown = admin.get(f"/v1/admin/requests/{one}")
    cancelled = admin.post(f"/v1/admin/requests/{one}/cancel")
    repeated = admin.post(f"/v1/admin/requests/{one}/cancel")
    finished = admin.post(f"/v1/admin/requests/{done}/cancel")
    unknown = admin.get(f"/v1/admin/requests/{uuid.uuid4()}")
    batch_cancelled = admin.post(f"/v1/admin/batches/{batch}/cancel")
    batch_again = admin.post(f"/v1/admin/batches/{batch}/cancel")
    not_a_batch = admin.post("/v1/admin/batches/nonsense/cancel")

    assert shown.status_code == 200, shown.text
    assert (shown.json()["id"], shown.json()["input"]) == (one, "What is 2 + 3?")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert repeated.status_code == 200
    assert repeated.json()["status"] == "cancelled"
    assert finished.status_code == 409
    assert "already succeeded" in finished.json()["error"]
    assert unknown.status_code == 404
    assert batch_cancelled.status_code == 200
    assert batch_cancelled.json()["cancelled_requests"] == 2
    assert batch_again.status_code == 200
    assert batch_again.json()["cancelled_requests"] == 0
    assert not_a_batch.status_code == 404
    with as_tenant(admin_api, tenant) as client:  # the tenant sees the operator's cancel
        assert client.get(f"/v1/agent-requests/{one}").json()["status"] == "cancelled"
        assert client.get(f"/v1/agent-batches/{batch}").json()["cancelled_at"] is not None


def test_per_key_request_limit_answers_429_with_retry_after_in_each_routes_shape(
    admin_api: RunningApi, admin: httpx.Client
) -> None:
    tenant = new_tenant(admin_api)
    key_id = admin.get(f"/v1/admin/tenants/{tenant.name}/keys").json()[0]["id"]
    set_limits = admin.put(f"/v1/admin/keys/{key_id}/limits", json={"requests_per_minute": 3})
    assert set_limits.status_code == 200
    assert set_limits.json()["requests_per_minute"] == 3
    other = new_tenant(admin_api)

    with as_tenant(admin_api, tenant) as client, as_tenant(admin_api, other) as unlimited:
        answers = [client.get("/v1/budget") for _ in range(3)]
        native = client.get("/v1/budget")
        openai = client.get("/v1/models")
        others = [unlimited.get("/v1/budget").status_code for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert native.status_code == 429
    assert 1 <= int(native.headers["retry-after"]) <= 60
    assert "limit of 3 requests per minute" in native.json()["error"]
    assert openai.status_code == 429
    assert "retry-after" in openai.headers
    assert openai.json()["error"]["type"] == "rate_limit_error"
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert others == [200] * 5  # limits are per key

    reset = admin.put(f"/v1/admin/keys/{key_id}/limits", json={"requests_per_minute": 0})
    assert reset.status_code == 200
    with as_tenant(admin_api, tenant) as client:
        assert client.get("/v1/budget").status_code == 200  # 0: unlimited
    assert admin.put(f"/v1/admin/keys/{key_id}/limits", json={"requests_per_minute": -1}).status_code == 422


def test_default_token_limit_counts_the_body_sent(database_url: str) -> None:
    settings = api_settings(database_url, api=LIMITS | {"tokens_per_minute": 60})
    with running_api(settings) as api:
        tenant = new_tenant(api)
        with as_tenant(api, tenant) as client:
            first = client.post("/v1/agent-requests", json={"input": "x" * 80})  # 93 bytes: 24 tokens
            second = client.post("/v1/agent-requests", json={"input": "y" * 90})  # 26 more: 50
            third = client.post("/v1/agent-requests", json={"input": "z" * 90})  # 76 would pass 60
            small_get = client.get("/v1/budget")  # no body: no tokens, still admitted

    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert third.status_code == 429
    assert "limit of 60 tokens per minute" in third.json()["error"]
    assert small_get.status_code == 200


@pytest.mark.redis
def test_redis_limiter_is_shared_by_every_api_process(database_url: str) -> None:
    settings: Settings = api_settings(
        database_url,
        mode="distributed",
        broker_url="memory://",
        redis_url=REDIS_URL,
        api=LIMITS | {"requests_per_minute": 4},
    )
    with running_api(settings) as first, running_api(settings) as second:
        name = f"tenant-{uuid.uuid4().hex[:8]}"
        create_tenant(first.sessions, name)
        _, secret = create_api_key(first.sessions, name)
        headers = {"Authorization": f"Bearer {secret}"}
        codes = []
        for index in range(6):
            url = (first if index % 2 == 0 else second).url
            codes.append(httpx.get(f"{url}/v1/budget", headers=headers, timeout=30).status_code)
        with session_scope(first.sessions) as session:
            key = ApiKeyRepository(session).find_by_secret(secret)
            assert key is not None

    assert codes == [200, 200, 200, 200, 429, 429]
