"""The offline graph replay (``evaluation/graphs.py``) agrees with graph requests run through the
real embedded pipeline: the planning step and every node take the same steps (executor and branch)
and reach the same answers, and the graph request the same final answer, under both κ modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.config import load_settings
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope
from hera_router.evaluation.graphs import GraphReplayer, GraphTask
from hera_router.evaluation.live import LiveItem, live_system, outcomes, submit, wait
from hera_router.evaluation.replay import ProfileSet, Replayer, simulated_extension, simulated_latency
from hera_router.pipeline.graph import node_request_id
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import generate
from tests.unit.evaluation.stubs import hashed_estimators

SEED = 5
POLICIES = ("all-llm", "hera")


@pytest.mark.parametrize("mode", ["position", "depth"])
def test_graph_replay_takes_the_live_pipelines_steps_to_its_answers(tmp_path: Path, mode: str) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"graph_kappa": mode})
    from hera_router.db.migrate import upgrade

    upgrade(settings.database_url)
    records = generate("graph", 4, SEED)
    tasks = [GraphTask.of(r) for r in records]
    items = [LiveItem(r.id, r.request, r.gold, r.metric, r.family) for r in records]
    estimators = hashed_estimators()
    replayer = Replayer(
        ProfileSet(None, []), estimators, max_steps=settings.routing.max_steps,
        latency=simulated_latency(settings), extension=simulated_extension(settings),
    )  # fmt: skip
    graphs = GraphReplayer(replayer)
    compared = 0
    with live_system(settings, estimator_source=lambda: estimators) as app:
        sessions = app.hera_runtime.sessions
        for name in POLICIES:
            batch = submit(app, items, name)
            ids = wait(app.hera_runtime.read_sessions, batch, timeout_s=300)
            runs, _stats = graphs.run(create_policy(name, settings.routing), tasks)
            live = {o.key: (o, request_id) for o, request_id in zip(outcomes(sessions, ids), ids, strict=True)}
            for run in runs:
                graph_outcome, graph_id = live[run.outcome.key]
                assert run.planned
                assert (run.outcome.status, run.outcome.answer, run.outcome.score) == (
                    graph_outcome.status, graph_outcome.answer, graph_outcome.score,
                ), (name, run.outcome.key)  # fmt: skip
                own = len(graph_outcome.steps)  # the graph request's own steps: its planning walk
                assert [(s.executor, s.branch) for s in run.outcome.steps[:own]] == [
                    (s.executor, s.branch) for s in graph_outcome.steps
                ]
                with session_scope(sessions) as session:
                    rows = {n.key: n for n in PlanNodeRepository(session).for_request(graph_id)}
                    depth = {key: row.depth_steps for key, row in rows.items()}
                for node in run.nodes:
                    [node_live] = outcomes(sessions, [node_request_id(graph_id, node.key)])
                    assert [(s.executor, s.branch) for s in node.outcome.steps] == [
                        (s.executor, s.branch) for s in node_live.steps
                    ], (name, run.outcome.key, node.key)
                    assert node.outcome.answer == node_live.answer
                    assert node.position.depth_steps == depth[node.key]  # the position the live κ read
                    compared += 1
    assert compared >= 2 * 4 * 3
