"""The whole pipeline in one process: memory:// broker, SQLite, real in-process worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.agent.scoring import score
from hera_router.config import load_settings
from hera_router.db.enums import RequestStatus
from hera_router.db.repositories import ModelCallRepository
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system
from tests.integration.pipeline.helpers import assert_consistent_record, submit, wait_until_finished

SEED = 11


@pytest.mark.parametrize("policy", ["all-llm", "random"])
def test_embedded_run_completes_with_a_consistent_record(tmp_path: Path, policy: str) -> None:
    settings = load_settings(data_dir=tmp_path, mode="embedded", simulator={"seed": SEED})
    tasks = generate("mixed", 12, SEED)
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, policy)
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=120)
        for request_id in ids:
            assert_consistent_record(sessions, request_id)
    assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values()), {
        row.custom_id: row.error for row in rows.values() if row.error
    }
    accuracy = sum(score(task.metric, rows[i].final_answer, task.gold) for i, task in zip(ids, tasks, strict=True))
    if policy == "all-llm":
        assert accuracy / len(tasks) >= 0.6  # the simulated LLM is good at these tasks
        assert all(row.slm_steps == 0 for row in rows.values())
    else:
        assert sum(row.slm_steps for row in rows.values()) > 0
        assert sum(row.llm_steps for row in rows.values()) > 0


def test_embedded_run_serves_every_model_tiers_queue(tmp_path: Path) -> None:
    """With HERA_MODELS, the one in-process worker consumes each tier's own queue too."""
    tiers = [
        {"name": name, "role": role, "queue": f"{role}.{name}", "backend": {"model": name, "logprobs": True}}
        for name, role in (("tiny", "edge"), ("mid", "edge"), ("cloud", "cloud"))
    ]
    settings = load_settings(
        data_dir=tmp_path, mode="embedded", simulator={"seed": SEED}, models=tiers, routing={"ladder_threshold": -0.4}
    )
    with embedded_system(settings) as system:
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), generate("mixed", 4, SEED), "hera-ladder")
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=120)
        with session_scope(sessions) as session:
            calls = ModelCallRepository(session).list_for_requests(ids)
    assert all(row.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED) for row in rows.values())
    assert any(row.status is RequestStatus.SUCCEEDED for row in rows.values())
    assert {call.tier for call in calls} <= {"tiny", "mid", "cloud"}
    assert "tiny" in {call.tier for call in calls}
    assert all(call.model == call.tier for call in calls)
