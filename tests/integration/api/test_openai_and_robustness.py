"""The OpenAI-compatible routes' limits and errors, the listings, and bad input that used to be
answered with a 5xx or an undocumented body, on SQLite and Postgres.

Nothing consumes the queue here (``memory://``): these tests are about what the API answers and
writes; tests/e2e runs the same routes to completion with real workers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import func, select

from hera_router.db.models import Request
from hera_router.db.session import session_scope
from tests.integration.api.conftest import LIMITS, RunningApi, TenantKey, api_settings, new_tenant, running_api

FILE_LIMIT = 2_000
ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[RunningApi]:
    settings = api_settings(
        database_url,
        api={**LIMITS, "admin_token": ADMIN},
        openai={"max_file_bytes": FILE_LIMIT, "chat_timeout_s": 0.3, "poll_interval_s": 0.05},
        routing={"policy": "all-llm"},
    )
    with running_api(settings) as running:
        yield running


@pytest.fixture
def sdk(api: RunningApi, tenant: TenantKey) -> OpenAI:
    return OpenAI(base_url=f"{api.url}/v1", api_key=tenant.secret, max_retries=2, timeout=30)


def line(custom_id: str, content: str = "What is 2 + 2?") -> str:
    body = {"model": "hera-router", "messages": [{"role": "user", "content": content}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def requests_of(api: RunningApi, tenant: TenantKey) -> int:
    with session_scope(api.sessions) as session:
        return int(session.scalar(select(func.count()).where(Request.tenant_id == tenant.id)) or 0)


# -- the OpenAI routes --------------------------------------------------------------------------


def test_a_file_over_the_limit_is_413_naming_the_setting(sdk: OpenAI) -> None:
    just_over = (line("a") + "\n") * (FILE_LIMIT // 100)  # past the limit, within the multipart slack
    far_over = b"x" * (200 * 1024)  # refused from Content-Length, before the body is read

    for content in (just_over.encode(), far_over):
        with pytest.raises(openai.APIStatusError) as refused:
            sdk.files.create(file=("big.jsonl", content), purpose="batch")
        assert refused.value.status_code == 413
        assert f"{FILE_LIMIT:,} bytes (HERA_OPENAI__MAX_FILE_BYTES)" in refused.value.message


def test_a_chat_that_outlives_the_timeout_points_to_the_batch_route_and_is_not_retried(
    api: RunningApi, tenant: TenantKey, sdk: OpenAI
) -> None:
    with pytest.raises(openai.InternalServerError) as slow:
        sdk.chat.completions.create(model="hera-router/all-llm", messages=[{"role": "user", "content": "hi"}])

    assert slow.value.status_code == 504
    assert slow.value.response.headers["x-should-retry"] == "false"
    assert "HERA_OPENAI__CHAT_TIMEOUT_S" in slow.value.message
    assert "POST /v1/batches" in slow.value.message
    assert requests_of(api, tenant) == 1, "the client must not have retried (each retry would start the agent again)"


def test_chat_input_problems_are_400_naming_the_field(sdk: OpenAI) -> None:
    cases = [
        ({"messages": [{"role": "user", "content": "a\u0000b"}]}, "messages[0].content", "NUL character"),
        ({"messages": [{"role": "user", "content": "hi"}], "metadata": {"note": "\u0000"}}, "metadata", "NUL"),
        ({"messages": [{"role": "system", "content": "   "}]}, "messages", "hold no text"),
        ({"messages": []}, "messages", "at least 1"),
    ]
    for extra, param, words in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            sdk.chat.completions.create(model="hera-router", **extra)  # type: ignore[call-overload]
        assert bad.value.param == param, bad.value.body  # type: ignore[attr-defined]
        assert words in bad.value.message


def test_batch_create_errors(api: RunningApi, sdk: OpenAI) -> None:
    uploaded = sdk.files.create(file=("in.jsonl", (line("a") + "\n").encode()), purpose="batch")
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.batches.create(input_file_id="file-" + "0" * 32, endpoint="/v1/chat/completions", completion_window="24h")
    assert unknown.value.param == "input_file_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as window:
        sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]
    assert window.value.param == "completion_window"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as policy:
        sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"policy": "cheapest"},
        )
    assert policy.value.param == "metadata.policy"  # type: ignore[attr-defined]
    # Another tenant's file is simply not there.
    other = OpenAI(base_url=f"{api.url}/v1", api_key=new_tenant(api).secret, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")


def test_batch_lines_become_queued_requests_in_line_order(api: RunningApi, tenant: TenantKey, sdk: OpenAI) -> None:
    content = "\n".join([line("a"), line("b", "Capital of Peru?"), "[1, 2]", line("c")]).encode()
    uploaded = sdk.files.create(file=("in.jsonl", content), purpose="batch")

    batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")

    assert batch.status == "in_progress"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (4, 0, 1)
    listed = httpx.get(
        f"{api.url}/v1/agent-requests",
        params={"batch_id": batch.model_extra["hera_batch_id"], "status": "queued"},  # type: ignore[index]
        headers={"Authorization": f"Bearer {tenant.secret}"},
    ).json()
    assert [row["custom_id"] for row in listed["data"]] == ["c", "b", "a"]  # newest first
    assert {row["policy"] for row in listed["data"]} == {"all-llm"}


# -- listings ---------------------------------------------------------------------------------


def test_agent_request_and_batch_listings_page_with_a_cursor(client: httpx.Client) -> None:
    batch_ids = []
    for index in range(3):
        response = client.post("/v1/agent-batches", json=[{"input": f"task {index}-{n}"} for n in range(2)])
        assert response.status_code == 202, response.text
        batch_ids.append(response.json()["id"])
    client.post(f"/v1/agent-batches/{batch_ids[0]}/cancel")

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = client.get("/v1/agent-requests", params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    queued = client.get("/v1/agent-requests", params=[("status", "queued"), ("status", "running")]).json()
    assert len(queued["data"]) == 4
    cancelled = client.get("/v1/agent-requests", params={"status": "cancelled"}).json()
    assert len(cancelled["data"]) == 2

    batches = client.get("/v1/agent-batches", params={"limit": 2}).json()
    assert [b["id"] for b in batches["data"]] == batch_ids[:0:-1]
    rest = client.get("/v1/agent-batches", params={"cursor": batches["next_cursor"]}).json()
    assert [b["id"] for b in rest["data"]] == [batch_ids[0]]
    assert [b["id"] for b in client.get("/v1/agent-batches", params={"status": "cancelled"}).json()["data"]] == [
        batch_ids[0]
    ]
    assert len(client.get("/v1/agent-batches", params={"status": "active"}).json()["data"]) == 2
    bad = client.get("/v1/agent-requests", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert "`cursor`" in bad.json()["error"]


# -- bad input never answers 5xx ------------------------------------------------------------------


def test_nul_characters_fail_their_line_not_the_batch(client: httpx.Client) -> None:
    items = [
        {"input": "a\u0000b", "custom_id": "nul-input"},
        {"input": "ok", "metadata": {"tags": ["x", "\u0000"]}},
        {"input": "ok", "metadata": {"k\u0000": 1}},
        {"input": "fine", "custom_id": "good"},
    ]
    response = client.post("/v1/agent-batches", json=items)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [r["message"] for r in body["rejected"]] == [
        "item 1: `input` contains a NUL character (\\u0000), which cannot be stored; remove it",
        "item 2: `metadata.tags[1]` contains a NUL character (\\u0000), which cannot be stored; remove it",
        "item 3: a key of `metadata` contains a NUL character (\\u0000), which cannot be stored; remove it",
    ]
    jsonl = "\n".join(json.dumps(item) for item in items).encode()
    as_file = client.post("/v1/agent-batches", content=jsonl, headers={"Content-Type": "application/x-ndjson"})
    assert as_file.status_code == 202
    assert [r["line"] for r in as_file.json()["rejected"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"input": "a\\u0000"}', "`input`"),
        (b'{"input": "ok", "gold_answer": "\\u0000"}', "`gold_answer`"),
        (b'{"input": "a\\ud800"}', "body.input"),
    ],
)
def test_one_request_with_unstorable_text_is_422_naming_the_field(
    client: httpx.Client, body: bytes, field: str
) -> None:
    response = client.post("/v1/agent-requests", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


def test_nul_in_a_query_or_path_is_a_4xx(api: RunningApi, client: httpx.Client) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    runs = httpx.get(f"{api.url}/v1/admin/training-runs", params={"estimator": "\u0000"}, headers=admin)
    assert runs.status_code == 422
    assert runs.json()["details"] == [
        {
            "field": "query.estimator",
            "message": "query parameter `estimator` contains a NUL character (\\u0000), which cannot be stored; "
            "remove it",
        }
    ]
    named = client.post("/v1/agent-batches", params={"name": "a\u0000"}, json=[{"input": "x"}])
    assert named.status_code == 422
    assert "`name`" in named.json()["error"]
    assert client.get("/v1/agent-requests/%00").status_code == 422
    openai_path = client.get("/v1/files/file-%00")
    assert openai_path.status_code == 400
    assert openai_path.json()["error"]["type"] == "invalid_request_error"


def test_framework_errors_are_sentences_in_the_documented_shape(client: httpx.Client) -> None:
    not_utf8 = client.post(
        "/v1/agent-requests", content=b'{"input": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 400
    assert not_utf8.json()["error"].startswith("the body could not be read as application/json (UnicodeDecodeError")
    no_boundary = client.post("/v1/agent-batches", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400
    assert no_boundary.json()["error"].startswith("the multipart/form-data body could not be parsed")
    openai_body = client.post("/v1/chat/completions", content=b"\xff", headers={"Content-Type": "application/json"})
    assert openai_body.status_code == 400
    assert set(openai_body.json()["error"]) == {"message", "type", "param", "code"}
    nowhere = client.post("/v1/embeddings", json={})
    assert nowhere.status_code == 404
    assert "/v1/chat/completions" in nowhere.json()["error"]["message"]
    native_nowhere = client.get("/v1/agent-things")
    assert "/v1/agent-requests" in native_nowhere.json()["error"]


def test_batch_422_bodies_match_the_documented_schema(api: RunningApi, client: httpx.Client) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    documented = spec["paths"]["/v1/agent-batches"]["post"]["responses"]["422"]
    schema = spec["components"]["schemas"][documented["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert schema["required"] == ["error"]
    bad_policy = client.post("/v1/agent-batches", params={"policy": "nope"}, json=[{"input": "x"}])
    all_bad = client.post("/v1/agent-batches", json=[{"input": ""}])
    for response in (bad_policy, all_bad):
        assert response.status_code == 422
        assert set(response.json()) <= set(schema["properties"])
    assert "rejected" in all_bad.json()
    item = spec["components"]["schemas"]["AgentRequestItem"]["properties"]["policy"]
    assert {"all-llm", "random", "hera"} <= set(item["enum"])
    list_body = spec["paths"]["/v1/agent-batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert list_body["minItems"] == 1


def test_docs_are_served_without_a_cdn(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    bundle = anonymous.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000


def test_models_are_listed_without_a_database_round_trip_per_profile(sdk: OpenAI) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert ids[0] == "hera-router"
    assert "hera-router/all-llm" in ids
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-4o")


def test_unknown_ids_are_404_never_a_database_error(sdk: OpenAI) -> None:
    for bad in ("nope", "file-" + "g" * 32, "file-" + uuid.uuid4().hex + "x"):
        with pytest.raises(openai.NotFoundError):
            sdk.files.retrieve(bad)
    with pytest.raises(openai.NotFoundError):
        sdk.batches.cancel("batch_" + uuid.uuid4().hex)
