"""Statements and round trips per hop on the hot path, counted (not timed): they must not grow.

The pipeline harness (no broker, the hops called as a worker would) drains a fixed set of
simulated requests under :class:`hera_router.db.counting.StatementCounter`. A hop is one decision
or one model call, as in ``benchmarks/bench_pipeline.py``. The ceilings are the counts measured
when the claim and the completion became one statement each on Postgres (5.03 statements and
8.03 round trips per hop for this set; before: 7.03 and 10.03), with a little room for rounding;
a change that adds a statement to every hop fails here. SQLite keeps the separate statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hera_router.db.counting import Counts, counting
from hera_router.db.migrate import upgrade
from hera_router.db.models import Decision, ModelCall
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate
from tests.conftest import fresh_postgres_database
from tests.unit.pipeline.harness import make_harness, migrated_template

CEILINGS = {
    # database: (statements per hop, round trips per hop)
    "postgresql": (5.1, 8.1),
    "sqlite": (7.1, 11.1),
}


@pytest.fixture(
    params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres_database("hera_counts") as url:
        upgrade(url)
        yield url


def _per_hop(tmp_path: Path, database_url: str | None) -> tuple[str, Counts, int]:
    overrides = {} if database_url is None else {"database_url": database_url}
    harness = make_harness(tmp_path / "h", migrated_template(tmp_path), simulator={"seed": 7}, **overrides)
    try:
        harness.submit(generate("mixed", 2, 1), "random")
        harness.drain()  # warm: policies and backends built, statements compiled
        ids = harness.submit(generate("mixed", 12, 7), "random")
        with counting(harness.runtime.engine) as counter:
            harness.drain()
        with session_scope(harness.runtime.sessions) as session:
            decisions = session.scalar(select(func.count()).where(Decision.request_id.in_(ids)))
            calls = session.scalar(select(func.count()).where(ModelCall.request_id.in_(ids)))
        return harness.runtime.engine.dialect.name, counter.counts, int(decisions or 0) + int(calls or 0)
    finally:
        harness.close()


def test_statements_and_round_trips_per_hop_do_not_grow(tmp_path: Path, database_url: str | None) -> None:
    dialect, counts, hops = _per_hop(tmp_path, database_url)
    assert hops > 50
    per = counts.per(hops)
    statements, round_trips = CEILINGS[dialect]
    assert per["statements"] <= statements, per
    assert per["round_trips"] <= round_trips, per
    # The counter counts what it should: every write transaction has its BEGIN and COMMIT.
    assert counts.transactions > 0
    assert counts.round_trips >= counts.total_statements + 2 * counts.transactions - counts.statements["BEGIN"]
