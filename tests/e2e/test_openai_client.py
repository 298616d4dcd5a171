"""The official ``openai`` client, unchanged, against the whole system: the producer API served by
uvicorn over HTTP, Postgres, Redis, `hera-router worker` processes for the router, edge and cloud
queues, and the simulated SLM and LLM behind dev model servers (TGI and OpenAI protocols).

No mocks and no eager tasks: every batch line and chat completion is routed and executed by the
workers, and the assertions compare what the client reads with what Postgres holds. Policies are
``all-llm`` (the server default here), ``random`` and ``all-slm``: none needs trained estimators.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from sqlalchemy import select

from hera_router.api.app import create_app
from hera_router.api.state import ApiState
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.db.enums import RequestStatus
from hera_router.db.models import Request
from hera_router.db.repositories import ModelCallRepository, RequestRepository
from hera_router.db.session import session_scope
from hera_router.devserver.faults import FaultConfig
from hera_router.devserver.server import ServerThread
from hera_router.simulator.generate import TaskRecord, generate
from tests.conftest import REDIS_URL, fresh_postgres_database
from tests.integration.pipeline.distributed import DistributedSystem, distributed_system

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 11
BATCH_TIMEOUT_S = 240


@dataclass
class Deployment:
    system: DistributedSystem
    api_url: str
    state: ApiState

    def client(self, name: str | None = None) -> OpenAI:
        tenant = name or f"e2e-{uuid.uuid4().hex[:8]}"
        create_tenant(self.state.sessions, tenant)
        _, secret = create_api_key(self.state.sessions, tenant)
        return OpenAI(base_url=f"{self.api_url}/v1", api_key=secret, timeout=120)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    log_dir = tmp_path_factory.mktemp("e2e-openai")
    with (
        fresh_postgres_database("hera_e2e") as url,
        distributed_system(
            _migrated(url), REDIS_URL, log_dir, seed=SEED, overrides={"HERA_ROUTING__POLICY": "all-llm"}
        ) as system,
    ):
        app = create_app(system.settings)
        state: ApiState = app.state.hera
        try:
            with ServerThread(app) as server:
                yield Deployment(system=system, api_url=server.url, state=state)
        finally:
            state.close()


def _migrated(url: str) -> str:
    from hera_router.db.migrate import upgrade

    upgrade(url)
    return url


def chat_line(custom_id: str, content: str, model: str = "gpt-4o-mini", **body: object) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": content}], **body},
    }


def jsonl(lines: list[object]) -> bytes:
    return ("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n").encode()


def wait_for_batch(client: OpenAI, batch_id: str, deployment: Deployment, statuses: set[str]) -> openai.types.Batch:
    deadline = time.monotonic() + BATCH_TIMEOUT_S
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status}: {batch}\n{deployment.system.logs()}")
        time.sleep(0.5)


def requests_of(deployment: Deployment, hera_batch_id: str) -> dict[str, Request]:
    with session_scope(deployment.state.sessions) as session:
        rows = RequestRepository(session).list_for_batch(uuid.UUID(hera_batch_id))
        return {str(row.custom_id): row for row in rows}


def test_batch_upload_run_download_and_list(deployment: Deployment, tmp_path: Path) -> None:
    client = deployment.client()
    tasks: list[TaskRecord] = generate("mixed", 8, SEED)
    lines: list[object] = [chat_line(task.id, task.request) for task in tasks[:5]]
    lines.append(chat_line(tasks[5].id, tasks[5].request, model="hera-router/random"))
    lines.append(chat_line(tasks[6].id, tasks[6].request, metadata={"policy": "all-slm"}))
    lines.append(chat_line(tasks[7].id, tasks[7].request, model="all-llm"))
    lines.append({"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}})
    lines.append(chat_line("nul", "what is 2 + 2?\u0000"))
    lines.append("{not json")
    path = tmp_path / "batch.jsonl"
    path.write_bytes(jsonl(lines))

    with path.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    assert (uploaded.object, uploaded.purpose, uploaded.bytes) == ("file", "batch", path.stat().st_size)
    assert client.files.retrieve(uploaded.id).filename == "batch.jsonl"
    assert client.files.content(uploaded.id).content == path.read_bytes()

    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "e2e"}
    )
    assert created.status == "in_progress"
    assert created.request_counts is not None
    assert created.request_counts.total == 11
    batch = wait_for_batch(client, created.id, deployment, {"completed", "failed", "expired", "cancelled"})

    assert batch.status == "completed", batch
    assert batch.metadata == {"run": "e2e"}
    assert batch.completed_at is not None
    assert batch.output_file_id
    assert batch.error_file_id
    rows = requests_of(deployment, batch.model_extra["hera_batch_id"])  # type: ignore[index]
    assert set(rows) == {task.id for task in tasks}
    assert {rows[tasks[5].id].policy, rows[tasks[6].id].policy, rows[tasks[0].id].policy} == {
        "random",
        "all-slm",
        "all-llm",
    }
    succeeded = {cid for cid, row in rows.items() if row.status is RequestStatus.SUCCEEDED}
    assert batch.request_counts is not None
    assert batch.request_counts.total == 11
    assert batch.request_counts.completed == len(succeeded) >= 6
    assert batch.request_counts.failed == 11 - len(succeeded)

    outputs = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert {line["custom_id"] for line in outputs} == succeeded
    total_in = total_out = 0
    for line in outputs:
        row = rows[line["custom_id"]]
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": row.final_answer, "refusal": None}
        with session_scope(deployment.state.sessions) as session:
            calls = ModelCallRepository(session).list_for_request(row.id)
        assert body["usage"]["prompt_tokens"] == sum(call.tokens_in for call in calls) > 0
        assert body["usage"]["completion_tokens"] == sum(call.tokens_out for call in calls) > 0
        steps = body["hera"]["steps"]
        assert len(steps) == row.slm_steps + row.llm_steps > 0
        assert all(step["executor"] in ("slm", "llm") and step["branch"] for step in steps)
        assert sum(step["cost_usd"] for step in steps) == pytest.approx(row.cost_usd)
        if row.policy == "all-llm":
            assert {step["executor"] for step in steps} == {"llm"}
        total_in += body["usage"]["prompt_tokens"]
        total_out += body["usage"]["completion_tokens"]
    assert batch.usage is not None
    assert batch.usage.input_tokens >= total_in
    assert batch.usage.output_tokens >= total_out

    errors = {
        json.loads(line)["error"]["message"] for line in client.files.content(batch.error_file_id).text.splitlines()
    }
    assert "line 9: `body.messages` is required" in errors
    assert any(m.startswith("line 10: `body.messages[0].content` contains a NUL character") for m in errors)
    assert any(m.startswith("line 11: not valid JSON") for m in errors)

    # Listing pages through everything with after/limit, as the SDK's auto-pagination does.
    for _ in range(2):
        client.files.create(file=("extra.jsonl", jsonl([chat_line("x", "hi")])), purpose="batch")
    first_page = client.files.list(limit=2)
    assert len(first_page.data) == 2
    assert first_page.has_more
    all_files = [file.id for file in client.files.list(limit=2)]
    assert len(all_files) == len(set(all_files)) == 5  # input, 2 extra, output, error
    assert {batch.output_file_id, batch.error_file_id, uploaded.id} <= set(all_files)
    batches = client.batches.list(limit=1)
    assert [b.id for b in batches.data] == [batch.id]
    assert not batches.has_more

    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted
    assert deleted.id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    # Another tenant sees none of it.
    stranger = deployment.client()
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stranger.files.content(batch.output_file_id)
    assert stranger.files.list().data == []


def test_duplicate_custom_id_fails_the_batch(deployment: Deployment) -> None:
    client = deployment.client()
    data = jsonl([chat_line("a", "hi"), chat_line("b", "hi"), chat_line("a", "again")])
    uploaded = client.files.create(file=("dup.jsonl", data), purpose="batch")

    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")

    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.errors is not None
    assert batch.errors.data is not None
    [error] = batch.errors.data
    assert (error.code, error.line, error.param) == ("duplicate_custom_id", 3, "custom_id")
    assert error.message is not None
    assert "'a' appears twice in the file (first on line 1)" in error.message
    with session_scope(deployment.state.sessions) as session:
        assert session.scalars(select(Request).where(Request.custom_id == "b")).all() == []


def test_cancel_mid_run_keeps_what_finished(deployment: Deployment) -> None:
    client = deployment.client()
    tasks = generate("lookup", 6, SEED + 1)
    uploaded = client.files.create(
        file=("slow.jsonl", jsonl([chat_line(t.id, t.request) for t in tasks])), purpose="batch"
    )
    deployment.system.cloud_faults.configure(FaultConfig(latency_s=1.0))
    try:
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        time.sleep(1.5)
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status == "cancelling"
        assert cancelling.cancelling_at is not None
        cancelled = wait_for_batch(client, batch.id, deployment, {"cancelled"})
    finally:
        deployment.system.cloud_faults.configure(FaultConfig())
    assert cancelled.cancelled_at is not None
    assert cancelled.error_file_id is not None
    assert cancelled.request_counts is not None
    assert cancelled.request_counts.total == 6
    assert cancelled.request_counts.completed < 6
    errors = [json.loads(line) for line in client.files.content(cancelled.error_file_id).text.splitlines()]
    assert len(errors) == 6 - cancelled.request_counts.completed
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    rows = requests_of(deployment, cancelled.model_extra["hera_batch_id"])  # type: ignore[index]
    assert sum(row.status is RequestStatus.CANCELLED for row in rows.values()) == len(errors)
    with pytest.raises(openai.ConflictError):
        _cancel_finished(client)


def _cancel_finished(client: OpenAI) -> None:
    uploaded = client.files.create(file=("bad.jsonl", jsonl(["nope"])), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(batch.id).status == "completed"  # every line went to the error file
    client.batches.cancel(batch.id)


def test_chat_completion_plain_and_streamed(deployment: Deployment) -> None:
    client = deployment.client()
    task = generate("arithmetic", 1, SEED + 2)[0]

    completion = client.chat.completions.create(
        model="hera-router/all-llm", messages=[{"role": "user", "content": task.request}]
    )

    hera = completion.model_extra["hera"]  # type: ignore[index]
    with session_scope(deployment.state.sessions) as session:
        row = RequestRepository(session).get(uuid.UUID(hera["request_id"]))
        assert row is not None
        calls = ModelCallRepository(session).list_for_request(row.id)
    assert row.status is RequestStatus.SUCCEEDED
    assert row.policy == "all-llm"
    assert completion.object == "chat.completion"
    assert completion.model == "hera-router/all-llm"
    assert completion.choices[0].message.content == row.final_answer
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == sum(call.tokens_in for call in calls)
    assert completion.usage.total_tokens == sum(call.tokens_in + call.tokens_out for call in calls)
    assert [step["executor"] for step in hera["steps"]] == ["llm"] * row.llm_steps
    assert hera["cost_usd"] == pytest.approx(sum(step["cost_usd"] for step in hera["steps"]))

    chunks = list(
        client.chat.completions.create(
            model="hera-router/random",
            messages=[{"role": "user", "content": task.request}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    request_id = chunks[0].model_extra["hera"]["request_id"]  # type: ignore[index]
    with session_scope(deployment.state.sessions) as session:
        streamed = RequestRepository(session).get(uuid.UUID(request_id))
    assert streamed is not None
    assert streamed.policy == "random"
    if streamed.status is RequestStatus.SUCCEEDED:
        assert streamed_text == streamed.final_answer
        assert chunks[0].choices[0].delta.role == "assistant"
        step_chunks = [c for c in chunks if (c.model_extra or {}).get("hera", {}).get("step")]
        assert len(step_chunks) == streamed.slm_steps + streamed.llm_steps
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens > 0
    assert {c.id for c in chunks} == {f"chatcmpl-{uuid.UUID(request_id).hex}"}


def test_models_list_and_errors_as_the_client_expects(deployment: Deployment) -> None:
    client = deployment.client()
    models = {model.id for model in client.models.list()}
    assert {"hera-router", "hera-router/all-llm", "hera-router/random", "hera-router/hera"} <= models
    assert client.models.retrieve("hera-router/random").model_extra["policy"] == "random"  # type: ignore[index]

    with pytest.raises(openai.NotFoundError) as missing:
        client.batches.retrieve("batch_nope")
    assert missing.value.param == "batch_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as bad_purpose:
        client.files.create(file=("x.jsonl", b"{}"), purpose="fine-tune")
    assert bad_purpose.value.param == "purpose"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as bad_policy:
        client.chat.completions.create(
            model="hera-router", messages=[{"role": "user", "content": "hi"}], metadata={"policy": "cheapest"}
        )
    assert "'cheapest' is not a known policy" in bad_policy.value.message
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{deployment.api_url}/v1", api_key="wrong").models.list()
