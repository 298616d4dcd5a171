"""Embedded mode (`hera-router run`) does not shadow: its one in-process worker serves the live
hops and nothing consumes the training queue, so a shadow task would be queued on the in-memory
broker and lost. ``embedded_system`` turns ``HERA_CONTINUAL__SHADOW_RATE`` off instead."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from hera_router.config import load_settings
from hera_router.db.enums import RequestStatus
from hera_router.db.models import OutboxMessage, ShadowRun
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName
from hera_router.simulator.generate import generate
from hera_router.training.shadow import sampled
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system, without_shadow
from tests.integration.pipeline.helpers import submit, wait_until_finished

SEED = 13


def test_embedded_mode_turns_shadow_execution_off(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, mode="embedded", simulator={"seed": SEED}, continual={"shadow_rate": 1})
    assert without_shadow(settings).continual.shadow_rate == 0
    assert without_shadow(settings).continual.min_labels == settings.continual.min_labels  # the rest kept
    assert settings.continual.shadow_rate == 1  # the caller's settings are not changed
    tasks = generate("lookup", 4, SEED)
    with embedded_system(settings) as system:
        assert system.settings.continual.shadow_rate == 0
        assert system.app.settings.continual.shadow_rate == 0
        sessions = system.app.hera_runtime.sessions
        ids = submit(sessions, celery_dispatcher(system.app), tasks, "all-llm")
        rows = wait_until_finished(system.app.hera_runtime.read_sessions, ids, timeout_s=120)
        with session_scope(sessions) as session:
            shadow_outbox = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.task_name == TaskName.SHADOW_REQUEST)
            )
            shadow_runs = session.scalar(select(func.count()).select_from(ShadowRun))
    assert all(row.status is RequestStatus.SUCCEEDED for row in rows.values())
    # At rate 1 every one of them would have been sampled; none was queued or run.
    assert all(sampled(request_id, settings.continual.shadow_rate) for request_id in ids)
    assert shadow_outbox == 0
    assert shadow_runs == 0
