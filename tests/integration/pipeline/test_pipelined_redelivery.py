"""Redelivery on Postgres after a hop's commit (a crash between the commit and the broker's
acknowledgement): every hop delivered twice, with the combined claim and completion statements,
with and without pipelined hop transactions (``HERA_DB_PIPELINE``, off by default).

Pipelined, a hop's outbox row goes out with its ``COMMIT`` and nobody waits to learn whether it
was new (``OutboxRepository.add_deferred``): a hop delivered again therefore sends its next hop's
message once more instead of finding the row already published. Either way the guards must absorb
the second delivery: the requests end exactly as with single delivery, with one decision per
step, one kept model call per executed step, no duplicate call rows and the totals equal to the
calls; the extra messages stop after one no-op hop each.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hera_router.db.migrate import upgrade
from hera_router.db.models import ModelCall
from hera_router.db.repositories import RequestRepository
from hera_router.db.session import session_scope
from hera_router.pipeline.names import TaskName
from hera_router.simulator.generate import generate
from tests.conftest import fresh_postgres_database
from tests.integration.pipeline.helpers import assert_consistent_record
from tests.unit.pipeline.harness import Harness, make_harness, migrated_template

pytestmark = pytest.mark.postgres
SEED = 5


@pytest.fixture
def postgres_urls() -> Iterator[tuple[str, str]]:
    with fresh_postgres_database("hera_redeliver") as once, fresh_postgres_database("hera_redeliver") as twice:
        upgrade(once)
        upgrade(twice)
        yield once, twice


def _outcomes(harness: Harness, ids: list[uuid.UUID]) -> list[tuple[object, ...]]:
    with session_scope(harness.runtime.sessions) as session:
        rows = [RequestRepository(session).get(request_id) for request_id in ids]
        return [(r.status, r.final_answer, r.cost_usd, r.slm_steps, r.llm_steps) for r in rows if r is not None]


@pytest.mark.parametrize("pipelined", [False, True], ids=["default", "pipelined"])
def test_every_hop_delivered_twice_after_its_commit_changes_nothing(
    tmp_path: Path, postgres_urls: tuple[str, str], pipelined: bool
) -> None:
    template = migrated_template(tmp_path)
    tasks = generate("mixed", 4, SEED)
    harnesses = [
        make_harness(tmp_path / name, template, simulator={"seed": SEED}, database_url=url, db_pipeline=pipelined)
        for name, url in zip(("once", "twice"), postgres_urls, strict=True)
    ]
    once, twice = harnesses
    try:
        assert once.runtime.settings.db_pipeline is pipelined
        ids_once, ids_twice = once.submit(tasks, "random"), twice.submit(tasks, "random")
        once.drain()
        twice.drain(twice=True)  # every message runs again right after its first run committed
        assert _outcomes(once, ids_once) == _outcomes(twice, ids_twice)
        for request_id in ids_twice:
            assert_consistent_record(twice.runtime.sessions, request_id)
        with session_scope(twice.runtime.sessions) as session:
            keys = session.execute(
                select(ModelCall.idempotency_key, func.count()).group_by(ModelCall.idempotency_key)
            ).all()
        assert keys
        assert all(count == 1 for _, count in keys)  # no duplicate call rows
        # The second copies re-send their next hop once; those copies find nothing to do and send
        # nothing: at most twice the messages of a single delivery.
        # (Shadow re-runs are sampled by request id, which differs between the two harnesses.)
        hops = (TaskName.PLAN_STEP, TaskName.RUN_SUBTASK)
        sent_once = Counter(m.task for m in once.sent if m.task in hops)
        sent_twice = Counter(m.task for m in twice.sent if m.task in hops)
        assert set(sent_twice) == set(sent_once) == set(hops)
        for task, count in sent_once.items():
            assert count <= sent_twice[task] <= 2 * count
        # Re-sends happen either way: without the pipeline a row sent but not yet marked published
        # (marks are batched, ``pipeline/outbox.py``) is sent again too.
        assert sent_twice.total() > sent_once.total()
    finally:
        for harness in harnesses:
            harness.close()
