"""Statements and round trips per hop on the hot path, counted (not timed): they must not grow.

The pipeline harness (no broker, the hops called as a worker would) drains a fixed set of
simulated requests under :class:`hera_router.db.counting.StatementCounter`. A hop is one decision
or one model call, as in ``benchmarks/bench_pipeline.py``. The ceilings are the counts measured
when the claim and the completion became one statement each on Postgres and the hops' write
transactions were pipelined (5.04-5.27 statements and 5.17-5.68 round trips per hop for this set
with ``HERA_DB_PIPELINE=true``; 8.03-8.08 round trips without, the default; before both: 7.03
and 10.03). The spread is the outbox's background flush of published marks, a transaction of its own
whose timing varies; the ceilings leave room for it but not for one more statement or round trip
on every hop. SQLite keeps the separate statements (7.03 and 11.03, its BEGIN IMMEDIATE included).
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
    # (database, pipelined): (statements per hop, round trips per hop)
    ("postgresql", True): (5.4, 5.8),
    ("postgresql", False): (5.4, 8.5),
    ("sqlite", True): (7.4, 11.5),
}


@pytest.fixture(
    params=[
        pytest.param(("sqlite", True), id="sqlite"),
        pytest.param(("postgres", False), id="postgres", marks=pytest.mark.postgres),
        pytest.param(("postgres", True), id="postgres-pipelined", marks=pytest.mark.postgres),
    ]
)
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, bool]]:
    name, pipelined = request.param
    if name == "sqlite":
        yield None, pipelined
        return
    with fresh_postgres_database("hera_counts") as url:
        upgrade(url)
        yield url, pipelined


def _per_hop(tmp_path: Path, database_url: str | None, pipelined: bool) -> tuple[str, Counts, int]:
    overrides: dict[str, object] = {"db_pipeline": pipelined}
    if database_url is not None:
        overrides["database_url"] = database_url
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


def test_statements_and_round_trips_per_hop_do_not_grow(tmp_path: Path, database: tuple[str | None, bool]) -> None:
    database_url, pipelined = database
    dialect, counts, hops = _per_hop(tmp_path, database_url, pipelined)
    assert hops > 50
    per = counts.per(hops)
    statements, round_trips = CEILINGS[dialect, pipelined]
    assert per["statements"] <= statements, per
    assert per["round_trips"] <= round_trips, per
    assert counts.transactions > 0
    if dialect == "postgresql" and not pipelined:
        # Every statement, and each write transaction's BEGIN and COMMIT, is a round trip.
        assert counts.round_trips == counts.total_statements + 2 * counts.transactions
    elif dialect == "postgresql":
        # BEGIN rides with the first statement, the call intent's INSERT with the COMMIT.
        assert counts.round_trips < counts.total_statements + counts.transactions
