"""Outbox: add is idempotent per task id; claim returns unpublished rows; mark removes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from hera_router.db.models import OutboxMessage
from hera_router.db.repositories import OutboxRepository
from hera_router.db.session import make_session_factory, session_scope
from tests.integration.db.conftest import engine_for
from tests.integration.db.roundtrip import assert_round_trip


def test_add_round_trip_and_idempotent(session: Session) -> None:
    outbox = OutboxRepository(session)
    message, created = outbox.add("routing.plan_step", {"request_id": "r1", "seq": 0}, "plan:r1:0")
    assert created is True
    loaded = assert_round_trip(session, message)
    assert loaded.payload == {"request_id": "r1", "seq": 0}
    assert loaded.published_at is None

    again, created = outbox.add("routing.plan_step", {"request_id": "r1", "seq": 9}, "plan:r1:0")
    assert created is False
    assert again.id == message.id
    assert again.payload == {"request_id": "r1", "seq": 0}


def test_claim_and_mark_published(session: Session) -> None:
    outbox = OutboxRepository(session)
    ids = [outbox.add("routing.plan_step", {"seq": i}, f"plan:{uuid.uuid4()}")[0].id for i in range(3)]

    claimed = outbox.claim_unpublished(limit=2)
    assert [m.id for m in claimed] == ids[:2]
    assert outbox.oldest_unpublished_at() == claimed[0].created_at

    assert outbox.mark_published([m.id for m in claimed]) == 2
    assert outbox.mark_published([m.id for m in claimed]) == 0
    assert outbox.mark_published([]) == 0
    assert [m.id for m in outbox.claim_unpublished(limit=10)] == ids[2:]

    outbox.mark_failed(ids[2], "broker unreachable")
    session.expire_all()
    failed = outbox.by_task_id(claimed[0].task_id)
    assert failed is not None
    assert failed.published_at is not None
    assert failed.published_at.tzinfo is not None
    retried = session.get(OutboxMessage, ids[2])
    assert retried is not None
    assert (retried.attempts, retried.last_error, retried.published_at) == (1, "broker unreachable", None)


@pytest.fixture
def committed_messages(migrated_db_postgres_url: str) -> Iterator[tuple[str, list[uuid.UUID]]]:
    """Four committed outbox rows (a claim in another connection must see them), removed after."""
    engine = engine_for(migrated_db_postgres_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        ids = [
            OutboxRepository(session).add("routing.plan_step", {"seq": i}, f"skip:{uuid.uuid4()}")[0].id
            for i in range(4)
        ]
    yield migrated_db_postgres_url, ids
    with session_scope(factory) as session:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_relays_claim_disjoint_rows(committed_messages: tuple[str, list[uuid.UUID]]) -> None:
    """FOR UPDATE SKIP LOCKED: a second relay skips the rows the first one holds."""
    url, ids = committed_messages
    engine = engine_for(url)
    factory = make_session_factory(engine)
    try:
        with factory() as first, factory() as second:
            mine = {m.id for m in OutboxRepository(first).claim_unpublished(limit=2)}
            theirs = {m.id for m in OutboxRepository(second).claim_unpublished(limit=10)}
            assert len(mine) == 2
            assert mine.isdisjoint(theirs)
            assert mine | theirs == set(ids)
            first.rollback()
            second.rollback()
    finally:
        engine.dispose()


def test_reopen_requeues_a_published_message(session: Session) -> None:
    outbox = OutboxRepository(session)
    fresh = outbox.reopen("execution.run_subtask", {"subtask_id": "s1"}, "run:s1")
    assert fresh.published_at is None
    outbox.mark_published([fresh.id])
    again = outbox.reopen("execution.run_subtask", {"subtask_id": "s1", "executor": "llm"}, "run:s1")
    assert again.id == fresh.id
    assert again.published_at is None
    assert again.payload == {"subtask_id": "s1", "executor": "llm"}
    assert [m.id for m in outbox.by_ids([fresh.id, uuid.uuid4()])] == [fresh.id]
    assert outbox.by_ids([]) == []
