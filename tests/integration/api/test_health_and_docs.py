"""Unauthenticated endpoints: the health check and the OpenAPI docs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.api.conftest import api_settings, running_api


def test_healthz_is_ok_without_a_key(anonymous: httpx.Client) -> None:
    response = anonymous.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_says_the_schema_is_missing(tmp_path: Path) -> None:
    settings = api_settings(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with running_api(settings) as api, httpx.Client(base_url=api.url) as http:
        health = http.get("/healthz")
        submit = http.post(
            "/v1/agent-requests", json={"input": "x"}, headers={"Authorization": "Bearer hk_x" + "y" * 40}
        )

    assert health.status_code == 503
    assert "has no hera-router schema" in health.json()["error"]
    assert "run `hera-router db upgrade` first" in health.json()["error"]
    assert submit.status_code == 503
    assert "run `hera-router db upgrade` first" in submit.json()["error"]


def test_docs_and_openapi(anonymous: httpx.Client) -> None:
    docs = anonymous.get("/docs")
    spec = anonymous.get("/openapi.json").json()

    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    paths = spec["paths"]
    for path in (
        "/v1/agent-requests",
        "/v1/agent-requests/{request_id}",
        "/v1/agent-requests/{request_id}/cancel",
        "/v1/agent-batches",
        "/v1/agent-batches/{batch_id}",
        "/v1/agent-batches/{batch_id}/results",
        "/v1/agent-batches/{batch_id}/cancel",
        "/healthz",
    ):
        assert path in paths, path
    batch_body = paths["/v1/agent-batches"]["post"]["requestBody"]["content"]
    assert set(batch_body) == {"application/json", "application/x-ndjson", "multipart/form-data"}
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
