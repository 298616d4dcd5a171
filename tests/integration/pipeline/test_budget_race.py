"""A tenant's budget under concurrency: many requests of one tenant racing its cap across real
worker processes (Postgres, Redis, the cloud model behind a dev server over HTTP).

Each call's start locks the tenant row and counts the calls in flight at their estimate, so the
spend may pass the budget only by the one call that started just below it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hera_router.api.costs import set_budget
from hera_router.api.tenants import create_tenant
from hera_router.db.enums import CallStatus, RequestStatus
from hera_router.db.repositories import CostRepository, ModelCallRepository, RequestRepository
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL
from tests.integration.pipeline.distributed import distributed_system
from tests.integration.pipeline.helpers import wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 7
REQUESTS = 16


def test_concurrent_requests_of_one_tenant_never_exceed_its_budget_by_more_than_one_step(
    migrated_postgres_url: str, tmp_path: Path
) -> None:
    tasks = generate("mixed", REQUESTS, SEED)
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED, start=("router",)) as system:
        system.start_worker("cloud", concurrency=8)  # 8 threads: many steps of the tenant racing the cap
        sessions = system.app.hera_runtime.sessions
        tenant = create_tenant(sessions, f"race-{uuid.uuid4().hex[:6]}")
        budget = 0.01  # a handful of cloud steps of sim-llm at $2.50 / $10 per 1M tokens
        set_budget(sessions, system.settings, tenant.name, daily_usd=budget, monthly_usd=None, action="stop")
        dispatcher = celery_dispatcher(system.app)
        ids: list[uuid.UUID] = []
        messages: list[uuid.UUID] = []
        with session_scope(sessions) as session:
            for task in tasks:
                request = RequestRepository(session).add(
                    tenant_id=tenant.id, input=task.request, policy="all-llm", custom_id=task.id
                )
                ids.append(request.id)
                messages.append(
                    dispatcher.enqueue(
                        session,
                        TaskName.PLAN_STEP,
                        {"request_id": str(request.id), "seq": 0},
                        plan_task_id(request.id, 0),
                    )
                )
        dispatcher.publish(messages)
        try:
            rows = wait_until_finished(sessions, ids, timeout_s=240)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{system.logs()}") from None
        with session_scope(sessions) as session:
            calls = ModelCallRepository(session).list_for_requests(ids)
            spent = CostRepository(session).for_tenant(tenant.id).total_usd
    assert all(call.status is not CallStatus.STARTED for call in calls)
    largest_step = max(call.cost_usd for call in calls)
    # Calls in flight count at their estimate (the token-limit cost), so the cap may bind with the
    # real spend still a little below it: conservative, never more than one step above it.
    print(f"budget ${budget:.6f}, spent ${spent:.6f}, largest step ${largest_step:.6f}, {len(calls)} calls")
    assert spent <= budget + largest_step, (spent, budget, largest_step)
    stopped = [
        row for row in rows.values() if row.status is RequestStatus.FAILED and "daily budget" in (row.error or "")
    ]
    assert stopped, "no request was stopped by the budget: the test raced nothing"
    assert all(row.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED) for row in rows.values())
