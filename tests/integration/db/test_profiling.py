"""Profiling runs and trees."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hera_router.db.enums import Executor, RunStatus
from hera_router.db.repositories import ProfilingRepository
from tests.integration.db.roundtrip import assert_round_trip


def test_run_and_tree_round_trip(session: Session) -> None:
    profiling = ProfilingRepository(session)
    run = profiling.create_run("nightly-sim", "sim", config={"depth": 15, "world": "travel"})
    assert_round_trip(session, run)

    root = profiling.add_node(
        run_id=run.id, request_key="q1", depth=0, producing_model=Executor.LLM, text="Plan a trip"
    )
    slm = profiling.add_node(
        run_id=run.id,
        request_key="q1",
        parent_id=root.id,
        depth=1,
        producing_model=Executor.SLM,
        text="Find flights",
        output="LIS 12:00",
        tokens_in=50,
        tokens_out=12,
        cost_usd=0.0,
        is_final=True,
        correct=True,
    )
    loaded = assert_round_trip(session, slm)
    assert (loaded.parent_id, loaded.is_final, loaded.correct) == (root.id, True, True)
    profiling.add_node(run_id=run.id, request_key="q2", depth=0, producing_model=Executor.SLM, text="Other")

    assert [n.id for n in profiling.nodes(run.id, "q1")] == [root.id, slm.id]
    assert len(profiling.nodes(run.id)) == 3

    assert profiling.finish_run(run.id, RunStatus.SUCCEEDED, n_requests=2) is True
    assert profiling.finish_run(run.id, RunStatus.FAILED, n_requests=0) is False
    session.expire_all()
    finished = profiling.get_run(run.id)
    assert finished is not None
    assert (finished.status, finished.n_requests) == (RunStatus.SUCCEEDED, 2)
