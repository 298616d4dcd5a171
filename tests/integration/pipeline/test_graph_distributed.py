"""Plans with dependencies across processes: real Postgres and Redis, `hera-router worker`
processes, simulated models over HTTP; cloud workers killed in the middle of fan-out and fan-in.

How a kill lands inside a fan-in: the test takes the row lock on the graph request that every
fan-out and fan-in takes first (``PlanNodeRepository.lock_graph``), waits until a worker's
transaction is blocked on it (``pg_stat_activity``: the node's completion is written but not
committed), SIGKILLs that worker and lets the lock go. The dead worker's transaction rolls back;
the reconciler gives its step back; the step runs again and its fan-in runs then, once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, text

from hera_router.db.enums import CallStatus, RequestStatus
from hera_router.db.models import Request
from hera_router.db.repositories import ModelCallRepository, OutboxRepository, RequestRepository, SubtaskRepository
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope
from hera_router.devserver.faults import FaultConfig
from hera_router.pipeline.graph import node_request_id
from hera_router.pipeline.names import plan_task_id
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from tests.conftest import REDIS_URL
from tests.integration.pipeline.distributed import distributed_system, wait_for
from tests.integration.pipeline.helpers import assert_consistent_record, submit

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 5
# A worker's transaction waiting for the graph request's row (the test holds its lock).
_BLOCKED = text("SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%requests%'")


def test_workers_killed_during_fan_in_every_node_and_the_final_step_run_once(
    migrated_postgres_url: str, tmp_path: Path
) -> None:
    overrides = {
        "HERA_RECONCILE_AFTER_S": "2",
        "HERA_SUBTASK_STALE_AFTER_S": "2",
        "HERA_WORKER_TIMEOUT_S": "3",
        "HERA_WORKER_HEARTBEAT_S": "0.5",
    }
    with distributed_system(migrated_postgres_url, REDIS_URL, tmp_path, seed=SEED, overrides=overrides) as system:
        sessions = system.app.hera_runtime.sessions
        task = next(t for t in generate("graph", 8, SEED) if len(t.plan) == 3)  # two parts and the final node

        def status() -> RequestStatus:
            with session_scope(sessions) as session:
                row = RequestRepository(session).get(graph_id)
                assert row is not None
                return row.status

        def blocked_on() -> list[str]:
            with session_scope(sessions) as session:
                return list(session.execute(_BLOCKED).scalars())

        def blocked() -> bool:
            return bool(blocked_on())

        # Calls take a second, so that a step given back after a kill is still running when the
        # test takes the lock again.
        system.cloud_faults.configure(FaultConfig(latency_s=1.0))
        [graph_id] = submit(sessions, celery_dispatcher(system.app), [task], "all-llm")

        def planned() -> bool:
            with session_scope(sessions) as session:
                return bool(PlanNodeRepository(session).for_request(graph_id))

        # From the fan-out on, only fan-ins take the graph request's row (a node's steps touch
        # their own request), so every wait on the held lock below is a fan-in's.
        wait_for(planned, 60, f"the graph never fanned out\n{system.logs()}")
        kills = fan_in_kills = 0
        while kills < 4 and status() is RequestStatus.RUNNING:
            holder = sessions()
            killed = False
            try:
                holder.execute(select(Request.id).where(Request.id == graph_id).with_for_update())
                # No reconcile while the lock is held: it may need the row too.
                wait_for(lambda: blocked() or status() is not RequestStatus.RUNNING, 60, system.logs(), 0.1)
                if waiting := blocked_on():
                    system.kill_worker("cloud")  # its transaction is inside a fan-in
                    kills, killed = kills + 1, True
                    # A fan-in waits in lock_graph's SELECT ... FOR UPDATE.
                    fan_in_kills += any("FOR UPDATE" in query for query in waiting)
            finally:
                holder.rollback()
                holder.close()
            if killed:
                system.start_worker("cloud")

                def given_back() -> bool:
                    return system.app.pipeline.reconcile() > 0 or status() is not RequestStatus.RUNNING

                wait_for(given_back, 60, f"the killed step was never given back\n{system.logs()}", 0.2)

        def finished() -> bool:
            system.app.pipeline.reconcile()
            return status() is not RequestStatus.RUNNING

        wait_for(finished, 180, f"the graph never finished\n{system.logs()}", interval_s=0.5)
        assert fan_in_kills == kills >= 2, f"{fan_in_kills} of {kills} kills landed in a fan-in"
        assert status() is RequestStatus.SUCCEEDED

        with session_scope(sessions) as session:
            graph = RequestRepository(session).get(graph_id)
            assert graph is not None
            nodes = list(PlanNodeRepository(session).for_request(graph_id))
            children = {n.key: RequestRepository(session).get(node_request_id(graph_id, n.key)) for n in nodes}
            outbox = OutboxRepository(session)
            plan_rows = {n.key: outbox.by_task_id(plan_task_id(node_request_id(graph_id, n.key), 0)) for n in nodes}
            final = next(n for n in nodes if n.to_final == 0)
            final_child = children[final.key]
            assert final_child is not None
            final_steps = SubtaskRepository(session).list_for_request(final_child.id)
            final_calls = ModelCallRepository(session).list_for_request(final_child.id)
            own_calls = ModelCallRepository(session).list_for_request(graph_id)
            attempts = [
                s.attempts
                for c in children.values()
                if c is not None
                for s in SubtaskRepository(session).list_for_request(c.id)
            ]
            session.expunge_all()

        assert [n.status for n in nodes] == ["succeeded"] * len(nodes)
        assert all(c is not None and c.status is RequestStatus.SUCCEEDED for c in children.values())
        assert all(row is not None for row in plan_rows.values())  # one start message per node
        for child in children.values():
            assert child is not None
            assert_consistent_record(sessions, child.id)  # one kept call per step of every node
        # The final node: one step, run (kept) once, and its answer is the graph's.
        assert len(final_steps) == 1
        assert Counter(c.status for c in final_calls)[CallStatus.OK] == 1
        assert graph.final_answer == final.answer == final_child.final_answer
        assert Counter(c.status for c in own_calls)[CallStatus.OK] == 1  # the planning step
        assert max(attempts) >= 2, "no killed step was ever claimed again"
