"""Budgets and costs through the API: a tenant over budget is refused with 402 naming the budget;
its costs and budget read back as JSON and CSV."""

from __future__ import annotations

import uuid

import httpx

from hera_router.api.costs import set_budget
from hera_router.db.enums import CallStatus, ModelRole
from hera_router.db.repositories import ModelCallRepository, RequestRepository
from hera_router.db.session import session_scope
from tests.integration.api.conftest import RunningApi, TenantKey


def _spend(api: RunningApi, tenant: TenantKey, usd: float) -> uuid.UUID:
    """A finished cloud call of ``usd`` on a request of the tenant, as the execution hop records it."""
    with session_scope(api.sessions) as session:
        request = RequestRepository(session).add(tenant_id=tenant.id, input="spent", policy="all-llm")
        calls = ModelCallRepository(session)
        key = f"test-{uuid.uuid4().hex}"
        calls.start(
            idempotency_key=key,
            request_id=request.id,
            subtask_id=None,
            backend="sim",
            model="sim-llm",  # type: ignore[arg-type]
            role=ModelRole.CLOUD,
            estimated_cost_usd=usd,
        )
        calls.finish(
            key,
            status=CallStatus.OK,
            latency_ms=5.0,
            cost_usd=usd,
            components={"tokens_cost_usd": usd * 0.75, "transfer_cost_usd": usd * 0.25},
        )
        return request.id


def test_a_tenant_over_its_daily_budget_is_refused_with_402_naming_it(
    api: RunningApi, client: httpx.Client, tenant: TenantKey
) -> None:
    set_budget(api.sessions, api.state.settings, tenant.name, daily_usd=0.5, monthly_usd=None, action="stop")
    assert client.post("/v1/agent-requests", json={"input": "first", "cost_cap_usd": 0.1}).status_code == 202
    _spend(api, tenant, 0.5)

    refused = client.post("/v1/agent-requests", json={"input": "one more"})
    assert refused.status_code == 402, refused.text
    message = refused.json()["error"]
    assert "daily budget of $0.500000" in message
    assert tenant.name in message
    assert "tenants budget" in message
    batch = client.post("/v1/agent-batches", json=[{"input": "a"}])
    assert batch.status_code == 402

    budget = client.get("/v1/budget").json()
    assert budget["daily_budget_usd"] == 0.5
    assert budget["action"] == "stop"
    assert budget["spent_today_usd"] >= 0.5


def test_costs_by_component_as_json_and_csv(api: RunningApi, client: httpx.Client, tenant: TenantKey) -> None:
    _spend(api, tenant, 0.2)
    _spend(api, tenant, 0.4)
    report = client.get("/v1/costs", params={"since": "2000-01-01"}).json()
    assert report["tenant"] == tenant.name
    [row] = report["rows"]
    assert row["role"] == "cloud"
    assert row["calls"] == 2
    assert abs(row["tokens_usd"] + row["transfer_usd"] - row["total_usd"]) < 1e-12
    assert abs(report["total_usd"] - 0.6) < 1e-12
    csv = client.get("/v1/costs", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    header, line = csv.text.splitlines()
    assert header.split(",")[:4] == ["day", "role", "model", "calls"]
    assert line.split(",")[1:4] == ["cloud", "sim-llm", "2"]
    assert client.get("/v1/costs", params={"since": "2999-01-01"}).json()["rows"] == []


def test_openai_routes_answer_429_insufficient_quota_over_budget(
    api: RunningApi, client: httpx.Client, tenant: TenantKey
) -> None:
    set_budget(api.sessions, api.state.settings, tenant.name, daily_usd=None, monthly_usd=0.1, action="cheapest")
    _spend(api, tenant, 0.1)
    refused = client.post(
        "/v1/chat/completions", json={"model": "hera", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert "monthly budget of $0.100000" in error["message"]
