"""Submitting, reading and cancelling single agent requests over HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hera_router.db.enums import CallStatus, Executor, ModelRole, RequestStatus, SubtaskStatus
from hera_router.db.repositories import (
    DecisionRepository,
    ModelCallRepository,
    RequestRepository,
    SubtaskRepository,
)
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.routing.registry import policy_names
from tests.integration.api.conftest import RunningApi, TenantKey, plan_message, wait_published


def test_submit_one_is_queued_with_its_outbox_row_published(
    api: RunningApi, client: httpx.Client, tenant: TenantKey
) -> None:
    response = client.post(
        "/v1/agent-requests",
        json={
            "input": "What is 2 + 3 * 4?",
            "custom_id": "q1",
            "metadata": {"source": "test"},
            "policy": "all-slm",
            "priority": 3,
            "gold_answer": "14",
        },
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["policy"] == "all-slm"
    assert body["custom_id"] == "q1"
    request_id = uuid.UUID(body["id"])
    with session_scope(api.sessions) as session:
        row = RequestRepository(session).get(request_id)
        assert row is not None
        assert (row.tenant_id, row.status, row.input) == (tenant.id, RequestStatus.QUEUED, "What is 2 + 3 * 4?")
        assert (row.policy, row.priority, row.meta, row.gold_answer) == ("all-slm", 3, {"source": "test"}, "14")
        assert row.batch_id is None
    message = wait_published(api, request_id)
    assert message.task_name == TaskName.PLAN_STEP
    assert message.task_id == plan_task_id(request_id, 0)
    assert message.payload == {"request_id": str(request_id), "seq": 0}


def test_defaults_to_the_configured_policy(api: RunningApi, client: httpx.Client) -> None:
    response = client.post("/v1/agent-requests", json={"input": "hello"})

    assert response.status_code == 202, response.text
    assert response.json()["policy"] == api.state.settings.routing.policy
    assert response.json()["custom_id"] is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"input": "x", "prioirty": 1}, "body.prioirty: `prioirty` is not a known field"),
        ({"input": "x", "priority": "high"}, "body.priority: Input should be a valid integer"),
        ({"input": "x", "priority": True}, "body.priority: Input should be a valid integer"),
        ({"custom_id": "a"}, "body.input: `input` is required"),
        ({"input": ""}, "body.input: String should have at least 1 character"),
        ({"input": 42}, "body.input: Input should be a valid string"),
        ({"input": "x", "metadata": [1]}, "body.metadata: Input should be a valid dictionary"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: httpx.Client, payload: dict[str, object], expected: str
) -> None:
    response = client.post("/v1/agent-requests", json=payload)

    assert response.status_code == 422
    assert response.json()["error"] == expected
    assert response.json()["details"][0]["field"] == expected.split(":", maxsplit=1)[0]


def test_malformed_json_body_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/v1/agent-requests", content=b'{"input": "x",', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["error"].startswith("body: the body is not valid JSON")


def test_unknown_policy_and_blank_input_are_422(client: httpx.Client) -> None:
    unknown = client.post("/v1/agent-requests", json={"input": "x", "policy": "magic"})
    blank = client.post("/v1/agent-requests", json={"input": "   "})

    assert unknown.status_code == 422
    known = ", ".join(policy_names())
    assert unknown.json()["error"] == f"`policy` 'magic' is not a known policy; choose one of {known}"
    assert blank.status_code == 422
    assert blank.json()["error"] == "`input` is blank; give the agent a task"


def test_oversized_input_is_422_and_oversized_body_is_413(client: httpx.Client) -> None:
    long_input = client.post("/v1/agent-requests", json={"input": "x" * 101})
    huge_body = client.post("/v1/agent-requests", json={"input": "x", "metadata": {"blob": "y" * 5000}})

    assert long_input.status_code == 422
    assert long_input.json()["error"] == (
        "`input` has 101 characters, more than the limit of 100 (HERA_API__MAX_INPUT_CHARS)"
    )
    assert huge_body.status_code == 413
    assert "larger than the limit of 4,096 bytes (HERA_API__MAX_UPLOAD_BYTES)" in huge_body.json()["error"]


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> object:
        yield b'{"input": "'
        for _ in range(10):
            yield b"z" * 1000
        yield b'"}'

    response = client.post("/v1/agent-requests", content=chunks(), headers={"Content-Type": "application/json"})  # type: ignore[arg-type]

    assert response.status_code == 413
    assert "HERA_API__MAX_UPLOAD_BYTES" in response.json()["error"]


def test_request_view_shows_the_tree_decisions_and_calls(api: RunningApi, client: httpx.Client) -> None:
    request_id = uuid.UUID(client.post("/v1/agent-requests", json={"input": "Plan a trip"}).json()["id"])
    with session_scope(api.sessions) as session:
        requests = RequestRepository(session)
        requests.transition(request_id, [RequestStatus.QUEUED], RequestStatus.RUNNING, count_attempt=True)
        decisions = DecisionRepository(session)
        decisions.add(
            request_id=request_id,
            seq=0,
            policy="hera",
            executor=Executor.LLM,
            branch="LLM",
            elapsed_ms=1.5,
            scores={"urc": 0.4},
            kappa=0.62,
            estimator_versions={"dp": "3"},
        )
        decisions.add(
            request_id=request_id,
            seq=1,
            policy="hera",
            executor=Executor.SLM,
            branch="SD",
            elapsed_ms=2.0,
            span=1,
            fallback_reason=None,
        )
        subtasks = SubtaskRepository(session)
        step0_id, _ = subtasks.add_id(
            request_id=request_id, seq=0, executor=Executor.LLM, branch="LLM", text="Plan a trip"
        )
        subtasks.transition(step0_id, [SubtaskStatus.PENDING], SubtaskStatus.RUNNING)
        subtasks.succeed(step0_id, "Pick a city", next_subtask="Choose dates")
        step1_id, _ = subtasks.add_id(
            request_id=request_id, seq=1, executor=Executor.SLM, branch="SD", text="Choose dates"
        )
        part1_id, _ = subtasks.add_id(
            request_id=request_id,
            seq=1,
            part=1,
            parent_id=step1_id,
            executor=Executor.SLM,
            branch="SD",
            text="Check the calendar",
        )
        subtasks.add_id(
            request_id=request_id,
            seq=1,
            part=2,
            parent_id=step1_id,
            executor=Executor.SLM,
            branch="SD",
            text="Pick a weekend",
        )
        calls = ModelCallRepository(session)
        calls.start(
            idempotency_key=f"{step0_id}:1",
            request_id=request_id,
            subtask_id=step0_id,
            backend="sim",
            model="sim-llm",
            role=ModelRole.CLOUD,
            estimated_cost_usd=0.0,
        )
        calls.finish(
            f"{step0_id}:1", status=CallStatus.OK, latency_ms=120.0, tokens_in=100, tokens_out=20, cost_usd=0.002
        )
        calls.start(
            idempotency_key=f"{part1_id}:1",
            request_id=request_id,
            subtask_id=part1_id,
            backend="sim",
            model="sim-slm",
            role=ModelRole.EDGE,
            estimated_cost_usd=0.0,
        )
        calls.finish(
            f"{part1_id}:1",
            status=CallStatus.ERROR,
            latency_ms=30.0,
            tokens_in=50,
            tokens_out=10,
            error="edge timed out",
        )
        requests.add_usage(request_id, cost_usd=0.002, llm_steps=1)

    response = client.get(f"/v1/agent-requests/{request_id}")

    assert response.status_code == 200, response.text
    detail = response.json()
    assert (detail["status"], detail["cost_usd"], detail["llm_steps"], detail["slm_steps"]) == ("running", 0.002, 1, 0)
    steps = detail["subtasks"]
    assert [(s["seq"], s["part"], s["executor"], s["branch"], s["status"]) for s in steps] == [
        (0, 0, "llm", "LLM", "succeeded"),
        (1, 0, "slm", "SD", "pending"),
    ]
    assert (steps[0]["text"], steps[0]["output"], steps[0]["next_subtask"]) == (
        "Plan a trip",
        "Pick a city",
        "Choose dates",
    )
    parts = steps[1]["children"]
    assert [(p["part"], p["text"], p["parent_id"]) for p in parts] == [
        (1, "Check the calendar", str(step1_id)),
        (2, "Pick a weekend", str(step1_id)),
    ]
    assert [(d["seq"], d["branch"], d["executor"], d["span"]) for d in detail["decisions"]] == [
        (0, "LLM", "llm", 1),
        (1, "SD", "slm", 1),
    ]
    first = detail["decisions"][0]
    assert (first["scores"], first["kappa"], first["elapsed_ms"], first["fallback_reason"]) == (
        {"urc": 0.4},
        0.62,
        1.5,
        None,
    )
    summary = detail["model_calls"]
    assert (summary["calls"], summary["errors"], summary["tokens_in"], summary["tokens_out"]) == (2, 1, 150, 30)
    assert summary["cost_usd"] == pytest.approx(0.002)
    assert summary["by_role"]["cloud"]["calls"] == 1
    assert summary["by_role"]["edge"]["latency_ms"] == 30.0
    assert [c["status"] for c in summary["items"]] == ["ok", "error"]


def test_cancel_a_queued_request(api: RunningApi, client: httpx.Client) -> None:
    request_id = client.post("/v1/agent-requests", json={"input": "long job"}).json()["id"]

    first = client.post(f"/v1/agent-requests/{request_id}/cancel")
    again = client.post(f"/v1/agent-requests/{request_id}/cancel")

    assert first.status_code == 200, first.text
    assert first.json() == {"id": request_id, "status": "cancelled"}
    assert again.status_code == 200
    detail = client.get(f"/v1/agent-requests/{request_id}").json()
    assert (detail["status"], detail["error"]) == ("cancelled", "cancelled by the client")


def test_cancel_a_finished_request_is_409(api: RunningApi, client: httpx.Client) -> None:
    request_id = uuid.UUID(client.post("/v1/agent-requests", json={"input": "quick"}).json()["id"])
    with session_scope(api.sessions) as session:
        requests = RequestRepository(session)
        requests.transition(request_id, [RequestStatus.QUEUED], RequestStatus.RUNNING)
        requests.succeed(request_id, "42")

    response = client.post(f"/v1/agent-requests/{request_id}/cancel")

    assert response.status_code == 409
    assert response.json()["error"] == (
        f"agent request {request_id} has already succeeded; only queued or running requests can be cancelled"
    )


def test_unknown_request_is_404_and_a_bad_id_is_422(client: httpx.Client) -> None:
    missing = uuid.uuid4()

    assert client.get(f"/v1/agent-requests/{missing}").json() == {"error": f"no agent request {missing}"}
    assert client.post(f"/v1/agent-requests/{missing}/cancel").status_code == 404
    bad = client.get("/v1/agent-requests/not-a-uuid")
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("path.request_id: Input should be a valid UUID")


def test_broker_down_still_accepts_and_leaves_the_row_to_the_relay(database_url: str) -> None:
    from tests.integration.api.conftest import api_settings, new_tenant, running_api

    # Nothing listens on port 1: every publish fails, the submission must not.
    settings = api_settings(database_url, broker_url="redis://127.0.0.1:1/0")
    with running_api(settings) as down:
        tenant = new_tenant(down)
        with httpx.Client(base_url=down.url, headers={"Authorization": f"Bearer {tenant.secret}"}) as http:
            response = http.post("/v1/agent-requests", json={"input": "still accepted"}, timeout=5)
        assert response.status_code == 202, response.text
        message = plan_message(down, response.json()["id"])
        assert message is not None
        assert message.published_at is None
