"""The outbox marks what it sent inside transactions that run anyway, and never loses a mark."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hera_router.db.repositories import OutboxRepository
from hera_router.db.session import session_scope
from tests.unit.pipeline.harness import Harness

HarnessFactory = Callable[..., Harness]


def _unpublished(harness: Harness) -> int:
    with session_scope(harness.runtime.sessions) as session:
        return len(OutboxRepository(session).claim_unpublished(1000))


def test_a_few_sent_rows_cost_the_hops_no_statement_and_the_idle_flush_marks_them(
    harness_factory: HarnessFactory,
) -> None:
    harness = harness_factory(relay_grace_s=3600.0)  # no idle flush during the test
    dispatcher = harness.pipeline.services.dispatcher
    with session_scope(harness.runtime.sessions) as session:
        first = dispatcher.enqueue(session, "maintenance.test", {"n": 1}, "t-1")
    assert dispatcher.publish([first]) == 1
    assert _unpublished(harness) == 1  # sent, not yet marked: no transaction was spent on it
    harness.pipeline.services.publish_after(
        lambda session: [dispatcher.enqueue(session, "maintenance.test", {"n": 2}, "t-2")]
    )
    assert _unpublished(harness) == 2  # one row is no batch: the next hop did not mark it either
    assert dispatcher.flush_marks() == 2
    assert _unpublished(harness) == 0


def test_a_batch_of_sent_rows_is_marked_by_the_next_transaction_not_one_of_its_own(
    harness_factory: HarnessFactory,
) -> None:
    harness = harness_factory(relay_grace_s=3600.0)
    dispatcher = harness.pipeline.services.dispatcher
    batch = dispatcher.MARK_BATCH
    with session_scope(harness.runtime.sessions) as session:
        sent = [dispatcher.enqueue(session, "maintenance.test", {"n": n}, f"t-{n}") for n in range(batch)]
    assert dispatcher.publish(sent) == batch
    harness.pipeline.services.publish_after(
        lambda session: [dispatcher.enqueue(session, "maintenance.test", {"n": -1}, "t-next")]
    )
    with session_scope(harness.runtime.sessions) as session:
        rows = {row.task_id for row in OutboxRepository(session).claim_unpublished(1000)}
    assert rows == {"t-next"}  # the hop's transaction marked the whole batch; its own row waits


def test_a_failed_transaction_keeps_its_marks_for_the_next(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(relay_grace_s=3600.0)
    dispatcher = harness.pipeline.services.dispatcher
    with session_scope(harness.runtime.sessions) as session:
        first = dispatcher.enqueue(session, "maintenance.test", {}, "t-1")
    dispatcher.publish([first])

    def broken(session: object) -> list[object]:
        raise RuntimeError("the hop failed")

    with pytest.raises(RuntimeError):
        harness.pipeline.services.publish_after(broken)  # type: ignore[arg-type]
    assert _unpublished(harness) == 1
    assert dispatcher.flush_marks() == 1
    assert _unpublished(harness) == 0


def test_an_idle_process_marks_its_rows_well_inside_the_relay_grace(harness_factory: HarnessFactory) -> None:
    harness = harness_factory(relay_grace_s=0.4)  # idle flush after 0.1 s
    dispatcher = harness.pipeline.services.dispatcher
    with session_scope(harness.runtime.sessions) as session:
        first = dispatcher.enqueue(session, "maintenance.test", {}, "t-1")
    dispatcher.publish([first])
    deadline = time.monotonic() + 5
    while _unpublished(harness) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _unpublished(harness) == 0
    assert len(harness.sent) == 1  # and the relay would have nothing to send again
    assert dispatcher.relay() == 0
