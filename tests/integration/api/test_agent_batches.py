"""Batches: JSON lists and JSONL (body or upload), per-line rejection, limits, progress, results, cancel."""

from __future__ import annotations

import json
import uuid

import httpx

from hera_router.db.enums import RequestStatus
from hera_router.db.repositories import RequestRepository
from hera_router.db.session import session_scope
from tests.integration.api.conftest import RunningApi, plan_message, wait_published

NDJSON = {"Content-Type": "application/x-ndjson"}

MIXED_JSONL = b"\n".join(
    [
        b'{"input": "What is 2 + 2?", "custom_id": "a1", "gold_answer": "4"}',
        b'{"input": "broken", ',
        b"",
        b'{"input": "Capital of France?", "custom_id": "a1"}',
        b'{"custom_id": "a3"}',
        b'{"input": "ok", "colour": "red"}',
        b'{"input": "Capital of Peru?", "custom_id": "a4", "policy": "all-slm", "priority": 2}',
        b"",
    ]
)
MIXED_ERRORS = [
    (2, "line 2: not valid JSON: Expecting property name enclosed in double quotes at column 21"),
    (4, "line 4: `custom_id` 'a1' appears twice in the file (first on line 1)"),
    (5, "line 5: `input` is required"),
    (
        6,
        "line 6: `colour` is not a known field "
        "(known fields: input, custom_id, metadata, policy, priority, gold_answer, cost_cap_usd, latency_budget_s)",
    ),
]


def assert_mixed_batch_accepted(api: RunningApi, response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["line"], r["message"]) for r in body["rejected"]] == MIXED_ERRORS
    with session_scope(api.sessions) as session:
        rows = RequestRepository(session).list_for_batch(uuid.UUID(body["id"]))
        assert [(r.custom_id, r.input, r.policy, r.priority) for r in rows] == [
            ("a1", "What is 2 + 2?", api.state.settings.routing.policy, 0),
            ("a4", "Capital of Peru?", "all-slm", 2),
        ]
        assert all(r.status is RequestStatus.QUEUED for r in rows)
    for row in rows:
        wait_published(api, row.id)
    batch_id: str = body["id"]
    return batch_id


def test_jsonl_body_accepts_good_lines_and_reports_bad_ones(api: RunningApi, client: httpx.Client) -> None:
    response = client.post("/v1/agent-batches", content=MIXED_JSONL, headers=NDJSON)

    batch_id = assert_mixed_batch_accepted(api, response)
    status = client.get(f"/v1/agent-batches/{batch_id}").json()
    assert [(r["line"], r["message"]) for r in status["rejected"]] == MIXED_ERRORS


def test_jsonl_upload_as_multipart_file(api: RunningApi, client: httpx.Client) -> None:
    response = client.post(
        "/v1/agent-batches",
        files={"file": ("requests.jsonl", MIXED_JSONL, "application/x-ndjson")},
        params={"name": "nightly"},
    )

    assert_mixed_batch_accepted(api, response)
    assert response.json()["name"] == "nightly"


def test_multipart_without_the_file_field_is_422(client: httpx.Client) -> None:
    response = client.post("/v1/agent-batches", files={"upload": ("r.jsonl", b'{"input": "x"}')})

    assert response.status_code == 422
    assert response.json()["error"] == "the multipart upload has no file in the field `file`"


def test_json_list_with_bad_items(api: RunningApi, client: httpx.Client) -> None:
    response = client.post(
        "/v1/agent-batches",
        json=[
            {"input": "one", "custom_id": "x"},
            "just a string",
            {"input": "two", "priority": "urgent"},
            {"input": "three", "custom_id": "x"},
            {"input": "four"},
        ],
        params={"policy": "random"},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["policy"]) == (2, "random")
    assert [r["message"] for r in body["rejected"]] == [
        "item 2: expected a JSON object with an `input` field, got a string",
        "item 3: `priority`: Input should be a valid integer",
        "item 4: `custom_id` 'x' appears twice in the list (first on item 1)",
    ]
    with session_scope(api.sessions) as session:
        rows = RequestRepository(session).list_for_batch(uuid.UUID(body["id"]))
        assert [(r.input, r.policy) for r in rows] == [("one", "random"), ("four", "random")]


def test_all_bad_is_422_with_every_message_and_creates_nothing(api: RunningApi, client: httpx.Client) -> None:
    response = client.post("/v1/agent-batches", content=b'not json\n{"input": ""}\n[1]\n', headers=NDJSON)

    assert response.status_code == 422
    body = response.json()
    messages = [
        "line 1: not valid JSON: Expecting value at column 1",
        "line 2: `input`: String should have at least 1 character",
        "line 3: expected a JSON object with an `input` field, got a list",
    ]
    assert [r["message"] for r in body["rejected"]] == messages
    assert body["error"] == "none of the 3 requests in the file could be accepted: " + "; ".join(messages)


def test_empty_file_is_422(client: httpx.Client) -> None:
    response = client.post("/v1/agent-batches", content=b"\n\n", headers=NDJSON)

    assert response.status_code == 422
    assert response.json()["error"] == "the file holds no requests; send at least one object with an `input` field"


def test_too_many_requests_is_413(client: httpx.Client) -> None:
    lines = b"\n".join(json.dumps({"input": f"q{i}"}).encode() for i in range(7))

    as_jsonl = client.post("/v1/agent-batches", content=lines, headers=NDJSON)
    as_list = client.post("/v1/agent-batches", json=[{"input": f"q{i}"} for i in range(7)])

    assert as_jsonl.status_code == 413
    assert as_jsonl.json()["error"] == (
        "the file holds 7 requests, more than the 6 one batch may hold (HERA_API__MAX_BATCH_REQUESTS); "
        "split it into several batches"
    )
    assert as_list.status_code == 413
    assert as_list.json()["error"].startswith("the list holds 7 requests")


def test_oversized_upload_is_413_and_long_input_rejects_only_its_line(client: httpx.Client) -> None:
    too_big = client.post("/v1/agent-batches", content=b'{"input": "' + b"x" * 5000 + b'"}', headers=NDJSON)
    long_line = client.post(
        "/v1/agent-batches", content=b'{"input": "ok"}\n{"input": "' + b"x" * 150 + b'"}', headers=NDJSON
    )

    assert too_big.status_code == 413
    assert "HERA_API__MAX_UPLOAD_BYTES" in too_big.json()["error"]
    assert long_line.status_code == 202
    assert [r["message"] for r in long_line.json()["rejected"]] == [
        "line 2: `input` has 150 characters, more than the limit of 100 (HERA_API__MAX_INPUT_CHARS)"
    ]


def test_body_errors(client: httpx.Client) -> None:
    not_a_list = client.post("/v1/agent-batches", json={"input": "x"})
    bad_json = client.post("/v1/agent-batches", content=b"[{", headers={"Content-Type": "application/json"})
    wrong_type = client.post("/v1/agent-batches", content=b"input=x", headers={"Content-Type": "text/plain"})
    bad_policy = client.post("/v1/agent-batches", json=[{"input": "x"}], params={"policy": "nope"})

    assert not_a_list.status_code == 422
    assert not_a_list.json()["error"].startswith("the body must be a JSON list of request objects")
    assert bad_json.status_code == 422
    assert bad_json.json()["error"].startswith("the body is not valid JSON")
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"].startswith("unsupported Content-Type 'text/plain'")
    assert bad_policy.status_code == 422
    assert bad_policy.json()["error"].startswith("`policy` 'nope' is not a known policy")


def test_progress_results_and_cancel(api: RunningApi, client: httpx.Client) -> None:
    items = [
        {"input": "2+2?", "custom_id": "c1", "gold_answer": "4"},
        {"input": "3+3?", "custom_id": "c2"},
        {"input": "4+4?", "custom_id": "c3"},
        {"input": "5+5?"},
        {"input": "6+6?", "custom_id": "c5"},
    ]
    batch_id = client.post("/v1/agent-batches", json=items).json()["id"]
    with session_scope(api.sessions) as session:
        requests = RequestRepository(session)
        rows = list(requests.list_for_batch(uuid.UUID(batch_id)))
        for row in rows[:3]:
            requests.transition(row.id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
        requests.succeed(rows[0].id, "4")
        requests.add_usage(rows[0].id, cost_usd=0.01, slm_steps=2, llm_steps=1)
        requests.fail(rows[1].id, "the cloud backend kept failing")
        requests.add_usage(rows[1].id, cost_usd=0.005, llm_steps=1)

    status = client.get(f"/v1/agent-batches/{batch_id}").json()
    assert status["counts"] == {"queued": 2, "running": 1, "succeeded": 1, "failed": 1, "cancelled": 0}
    assert (status["total"], status["done"], status["accepted"]) == (5, 2, 5)
    assert status["cost_usd"] == 0.015
    assert (status["slm_steps"], status["llm_steps"], status["cancelled"]) == (2, 2, False)

    # results_page_size is 2 in these tests: five requests take three pages
    results = client.get(f"/v1/agent-batches/{batch_id}/results")
    assert results.status_code == 200
    assert results.headers["content-type"] == "application/x-ndjson"
    assert f'filename="batch-{batch_id}-results.jsonl"' in results.headers["content-disposition"]
    lines = [json.loads(line) for line in results.text.splitlines()]
    assert [line["custom_id"] for line in lines] == ["c1", "c2", "c3", None, "c5"]
    assert lines[0] == {
        "custom_id": "c1",
        "request_id": str(rows[0].id),
        "status": "succeeded",
        "final_answer": "4",
        "error": None,
        "cost_usd": 0.01,
        "slm_steps": 2,
        "llm_steps": 1,
        "gold_answer": "4",
    }
    assert (lines[1]["status"], lines[1]["error"]) == ("failed", "the cloud backend kept failing")
    assert "gold_answer" not in lines[1]

    cancel = client.post(f"/v1/agent-batches/{batch_id}/cancel")
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["cancelled_requests"] == 3
    assert cancel.json()["cancelled_at"] is not None
    assert client.post(f"/v1/agent-batches/{batch_id}/cancel").json()["cancelled_requests"] == 0
    after = client.get(f"/v1/agent-batches/{batch_id}").json()
    assert after["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 1, "cancelled": 3}
    assert (after["done"], after["cancelled"]) == (5, True)


def test_unknown_batch_is_404(client: httpx.Client) -> None:
    missing = uuid.uuid4()

    assert client.get(f"/v1/agent-batches/{missing}").status_code == 404
    assert client.get(f"/v1/agent-batches/{missing}/results").json() == {"error": f"no agent batch {missing}"}
    assert client.post(f"/v1/agent-batches/{missing}/cancel").status_code == 404


def test_batch_requests_get_their_outbox_rows(api: RunningApi, client: httpx.Client) -> None:
    body = client.post("/v1/agent-batches", json=[{"input": "a"}, {"input": "b"}]).json()
    with session_scope(api.sessions) as session:
        rows = RequestRepository(session).list_for_batch(uuid.UUID(body["id"]))
    assert len(rows) == 2
    assert all(plan_message(api, row.id) is not None for row in rows)
