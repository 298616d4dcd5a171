"""API keys and tenant isolation: no key or a bad key is 401; another tenant's objects are 404."""

from __future__ import annotations

import httpx
import pytest

from hera_router.db.repositories import ApiKeyRepository
from hera_router.db.session import session_scope
from tests.integration.api.conftest import RunningApi, TenantKey, new_tenant

PROTECTED = [
    ("POST", "/v1/agent-requests"),
    ("POST", "/v1/agent-batches"),
    ("GET", "/v1/agent-requests/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v1/agent-batches/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v1/agent-batches/00000000-0000-0000-0000-000000000000/results"),
    ("POST", "/v1/agent-requests/00000000-0000-0000-0000-000000000000/cancel"),
    ("POST", "/v1/agent-batches/00000000-0000-0000-0000-000000000000/cancel"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_is_401(anonymous: httpx.Client, method: str, path: str) -> None:
    response = anonymous.request(method, path, json={"input": "x"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == (
        "no API key was sent; send 'Authorization: Bearer <key>' with a key from `hera-router keys create`"
    )


@pytest.mark.parametrize(
    "authorization",
    ["Bearer hk_not-a-real-key-at-all-0000000000000", "Bearer nonsense", "Bearer"],
)
def test_bad_key_is_401(anonymous: httpx.Client, authorization: str) -> None:
    response = anonymous.post("/v1/agent-requests", json={"input": "x"}, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["error"].startswith(("the API key is not valid", "the Authorization header"))


def test_wrong_scheme_is_401_with_a_hint(anonymous: httpx.Client) -> None:
    response = anonymous.post("/v1/agent-requests", json={"input": "x"}, headers={"Authorization": "Basic dTpw"})

    assert response.status_code == 401
    assert response.json()["error"].startswith("the Authorization header is not a Bearer key")


def test_revoked_key_is_401(api: RunningApi, client: httpx.Client, tenant: TenantKey) -> None:
    assert client.post("/v1/agent-requests", json={"input": "x"}).status_code == 202
    with session_scope(api.sessions) as session:
        keys = ApiKeyRepository(session)
        key = keys.find_by_secret(tenant.secret)
        assert key is not None
        keys.revoke(key.id)

    assert client.post("/v1/agent-requests", json={"input": "x"}).status_code == 401


def test_another_tenants_objects_are_404(api: RunningApi, client: httpx.Client) -> None:
    request_id = client.post("/v1/agent-requests", json={"input": "mine"}).json()["id"]
    batch_id = client.post("/v1/agent-batches", json=[{"input": "mine too"}]).json()["id"]
    other = new_tenant(api)

    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {other.secret}"}) as intruder:
        responses = [
            intruder.get(f"/v1/agent-requests/{request_id}"),
            intruder.post(f"/v1/agent-requests/{request_id}/cancel"),
            intruder.get(f"/v1/agent-batches/{batch_id}"),
            intruder.get(f"/v1/agent-batches/{batch_id}/results"),
            intruder.post(f"/v1/agent-batches/{batch_id}/cancel"),
        ]

    assert [r.status_code for r in responses] == [404] * 5
    assert responses[0].json() == {"error": f"no agent request {request_id}"}
    assert responses[2].json() == {"error": f"no agent batch {batch_id}"}
    # and nothing was cancelled on the owner's side
    assert client.get(f"/v1/agent-requests/{request_id}").json()["status"] == "queued"
    assert client.get(f"/v1/agent-batches/{batch_id}").json()["cancelled"] is False
