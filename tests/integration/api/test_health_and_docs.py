"""Unauthenticated endpoints: the health check and the OpenAPI docs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.api.conftest import api_settings, running_api


def test_healthz_answers_without_a_key_and_names_the_queues_nobody_consumes(anonymous: httpx.Client) -> None:
    # This app is the producer alone on memory://: no worker consumes anything.
    response = anonymous.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("degraded", "ok", "ok")
    assert body["queues"] == {name: [] for name in ("router", "edge", "cloud", "training", "maintenance")}
    assert body["warning"].startswith("no worker consumes the router, edge, cloud queues: requests stay queued")
    assert "hera-router serve-api" in body["warning"]


def test_healthz_lists_the_consumers_of_each_queue(tmp_path: Path) -> None:
    from hera_router.db.migrate import upgrade
    from hera_router.pipeline.queues import Queue
    from hera_router.workers.embedded import embedded_worker

    url = f"sqlite:///{tmp_path / 'hera.sqlite3'}"
    upgrade(url)
    with (
        running_api(api_settings(url)) as api,
        httpx.Client(base_url=api.url) as http,
        embedded_worker(api.state.celery, (Queue.ROUTER, Queue.EDGE), concurrency=1),
    ):
        partly = http.get("/healthz").json()

    assert partly["queues"]["router"] == ["embedded@localhost"]
    assert partly["queues"]["edge"] == ["embedded@localhost"]
    assert partly["queues"]["cloud"] == []
    assert partly["status"] == "degraded"
    assert partly["warning"].startswith("no worker consumes the cloud queue:")


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
