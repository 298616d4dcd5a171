"""The pipeline across processes: real Postgres and Redis, `hera-router worker` processes for the
router, edge and cloud queues, simulated models behind dev servers over TGI and OpenAI HTTP.

Failure tests assert on what Postgres holds afterwards: every request finished exactly once, one
decision and one successful model call per step, cost equal to the sum of the calls.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from hera_router.agent.inputs import world_record_to_item
from hera_router.api.app import create_app as create_api
from hera_router.api.service import SubmissionService
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.config import load_settings
from hera_router.db.enums import CallStatus, Executor, RequestStatus
from hera_router.db.repositories import (
    DecisionRepository,
    ModelCallRepository,
    OutboxRepository,
    RequestRepository,
    SubtaskRepository,
    TenantRepository,
)
from hera_router.db.session import session_scope
from hera_router.devserver.faults import FaultConfig
from hera_router.devserver.server import ServerThread
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system
from tests.conftest import REDIS_URL
from tests.integration.pipeline.distributed import DistributedSystem, distributed_system, wait_for
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 5


def snapshot(system_sessions: object, ids: list[uuid.UUID]) -> dict[str, object]:
    with session_scope(system_sessions) as session:  # type: ignore[arg-type]
        return {
            str(i): (
                RequestRepository(session).get(i).cost_usd,  # type: ignore[union-attr]
                len(SubtaskRepository(session).list_for_request(i)),
                len(DecisionRepository(session).list_for_request(i)),
                len(ModelCallRepository(session).list_for_request(i)),
            )
            for i in ids
        }


def queues_drained(system: DistributedSystem) -> bool:
    """No message waiting in, or delivered but unacknowledged from, this system's queues."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = system.settings.queues.model_dump().values()
        waiting = sum(int(client.llen(name)) for name in names)
        unacked = [raw for raw in client.hvals("unacked") if any(name.encode() in raw for name in names)]
        return waiting == 0 and not unacked
    finally:
        client.close()


def test_batch_completes_and_redelivery_changes_nothing(migrated_postgres_url: str, tmp_path: Path) -> None:
    tasks = generate("mixed", 50, SEED)
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED) as system:
        sessions = system.app.hera_runtime.sessions
        # Submitted through the producer API over HTTP, as a user would.
        tenant = create_tenant(sessions, f"api-{uuid.uuid4().hex[:6]}")
        _, secret = create_api_key(sessions, tenant.name)
        items = [world_record_to_item(dataclasses.asdict(task)) for task in tasks]
        items.insert(7, {"input": "", "custom_id": "empty"})  # a bad line must not stop the good ones
        with ServerThread(create_api(system.settings)) as api:
            response = httpx.post(
                f"{api.url}/v1/agent-batches?policy=random",
                json=items,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            body = response.json()
            assert body["accepted"] == 50
            assert [r["line"] for r in body["rejected"]] == [8]
            batch_id = uuid.UUID(body["id"])
            with session_scope(sessions) as session:
                ids = [r.id for r in RequestRepository(session).list_for_batch(batch_id)]
            try:
                rows = wait_until_finished(sessions, ids, timeout_s=300)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{system.logs()}") from None
            progress = httpx.get(
                f"{api.url}/v1/agent-batches/{batch_id}", headers={"Authorization": f"Bearer {secret}"}
            ).json()
        assert sum(row.cost_usd for row in rows.values()) == pytest.approx(progress["cost_usd"])
        # A random router may leave a weak SLM chain wandering past the step limit; that is an
        # answer of the system (failed, with its reason), not a lost request.
        failed = {row.custom_id: row.error for row in rows.values() if row.status is not RequestStatus.SUCCEEDED}
        assert all(row.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED) for row in rows.values())
        assert all("without a final answer" in (error or "") for error in failed.values()), failed
        assert len(failed) <= 5, failed
        distributed_answers = {row.custom_id: (row.status, row.final_answer) for row in rows.values()}
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
        before = snapshot(sessions, ids)

        # Redelivery: publish every message of the batch a second time.
        resent = 0
        with session_scope(sessions) as session:
            for request_id in ids:
                for subtask in SubtaskRepository(session).list_for_request(request_id):
                    system.app.send_task(
                        "execution.run_subtask",
                        kwargs={"subtask_id": str(subtask.id), "executor": subtask.executor.value},
                    )
                    resent += 1
                system.app.send_task(
                    TaskName.PLAN_STEP,
                    kwargs={"request_id": str(request_id), "seq": 0},
                    task_id=plan_task_id(request_id, 0),
                )
        assert resent > 50
        wait_for(lambda: queues_drained(system), 120, f"the duplicates were never consumed\n{system.logs()}")
        time.sleep(2)  # the last consumed duplicates finish their (no-op) transactions
        assert snapshot(sessions, ids) == before

    # The same batch in embedded mode (in-process models, SQLite, memory://) answers the same.
    embedded_settings = load_settings(data_dir=tmp_path / "embedded", simulator={"seed": SEED})
    with embedded_system(embedded_settings) as embedded:
        embedded_sessions = embedded.app.hera_runtime.sessions
        service = SubmissionService(embedded_settings, embedded_sessions, celery_dispatcher(embedded.app))
        tenant = create_tenant(embedded_sessions, "embedded")
        submission = service.submit_batch(tenant.id, items, policy="random")
        with session_scope(embedded_sessions) as session:
            embedded_ids = [r.id for r in RequestRepository(session).list_for_batch(submission.batch.id)]
        embedded_rows = wait_until_finished(embedded.app.hera_runtime.read_sessions, embedded_ids, timeout_s=300)
    embedded_answers = {row.custom_id: (row.status, row.final_answer) for row in embedded_rows.values()}
    assert embedded_answers == distributed_answers


def test_a_lost_message_is_recovered_by_the_reconciler(migrated_postgres_url: str, tmp_path: Path) -> None:
    overrides = {"HERA_RECONCILE_AFTER_S": "1"}
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED, overrides=overrides) as system:
        sessions = system.app.hera_runtime.sessions
        task = generate("lookup", 1, SEED + 1)[0]
        # Write the request and its first message, then "lose" the message: mark it published
        # without ever sending it, as a broker that dropped it would leave things.
        with session_scope(sessions) as session:
            tenant = TenantRepository(session).create(f"lost-{uuid.uuid4().hex[:6]}")
            request = RequestRepository(session).add(
                tenant_id=tenant.id, input=task.request, policy="all-llm", gold_answer=task.gold
            )
            message_id = celery_dispatcher(system.app).enqueue(
                session, TaskName.PLAN_STEP, {"request_id": str(request.id), "seq": 0}, plan_task_id(request.id, 0)
            )
            OutboxRepository(session).mark_published([message_id])
        time.sleep(2)  # older than HERA_RECONCILE_AFTER_S
        assert system.app.pipeline.reconcile() == 1
        rows = wait_until_finished(sessions, [request.id], timeout_s=120)
        assert rows[request.id].status is RequestStatus.SUCCEEDED
        assert_consistent_record(sessions, request.id)


def test_worker_killed_mid_step_still_completes_exactly_once(migrated_postgres_url: str, tmp_path: Path) -> None:
    overrides = {"HERA_RECONCILE_AFTER_S": "2", "HERA_SUBTASK_STALE_AFTER_S": "2"}
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED, overrides=overrides) as system:
        sessions = system.app.hera_runtime.sessions
        system.cloud_faults.configure(FaultConfig(latency_s=3.0))
        task = generate("arithmetic", 1, SEED + 2)[0]
        [request_id] = submit(sessions, celery_dispatcher(system.app), [task], "all-llm")

        def step_running() -> bool:
            with session_scope(sessions) as session:
                return any(s.status.value == "running" for s in SubtaskRepository(session).list_for_request(request_id))

        wait_for(step_running, 60, f"no step started\n{system.logs()}")
        system.kill_worker("cloud")
        system.cloud_faults.configure(FaultConfig())
        system.start_worker("cloud")

        def finished() -> bool:
            system.app.pipeline.reconcile()
            with session_scope(sessions) as session:
                request = RequestRepository(session).get(request_id)
                return request is not None and request.status is RequestStatus.SUCCEEDED

        wait_for(finished, 180, f"the request never finished after the kill\n{system.logs()}", interval_s=1.0)
        assert_consistent_record(sessions, request_id)
        with session_scope(sessions) as session:
            attempts = [s.attempts for s in SubtaskRepository(session).list_for_request(request_id)]
        assert max(attempts) >= 2, "the step the killed worker held was never claimed again"


def test_edge_outage_falls_back_to_the_cloud(migrated_postgres_url: str, tmp_path: Path) -> None:
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED) as system:
        sessions = system.app.hera_runtime.sessions
        system.edge_faults.configure(FaultConfig(error_rate=1.0, error_status=503))
        tasks = generate("mixed", 3, SEED + 3)
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "all-slm")
        rows = wait_until_finished(sessions, ids, timeout_s=180)
        assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values())
        with session_scope(sessions) as session:
            for request_id in ids:
                decisions = DecisionRepository(session).list_for_request(request_id)
                assert decisions
                assert all(d.fallback_reason and "edge" in d.fallback_reason for d in decisions)
                assert all(d.executor is Executor.LLM for d in decisions)
                calls = ModelCallRepository(session).list_for_request(request_id)
                assert {c.status for c in calls} == {CallStatus.OK, CallStatus.ERROR}
                assert rows[request_id].slm_steps == 0
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
