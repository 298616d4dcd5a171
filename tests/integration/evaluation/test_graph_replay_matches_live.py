"""The offline graph replay (``evaluation/graphs.py``) agrees with graph requests run through the
real embedded pipeline: the planning step and every node take the same steps (executor and branch)
and reach the same answers, and the graph request the same final answer, under both κ modes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from hera_router.config import Settings, load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories.plan_nodes import PlanNodeRepository
from hera_router.db.session import session_scope
from hera_router.evaluation.graphs import GraphReplayer, GraphTask
from hera_router.evaluation.live import LiveItem, live_system, outcomes, submit, wait
from hera_router.pipeline.graph import node_request_id
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import TaskRecord, generate
from hera_router.training.replay import ProfileSet, Replayer, simulated_extension, simulated_latency
from tests.unit.evaluation.stubs import hashed_estimators
from tests.unit.evaluation.test_graphs import SplitInTwo

SEED = 5
POLICIES = ("all-llm", "hera")


def _agree(settings: Settings, estimators: Estimators, records: list[TaskRecord], policies: Sequence[str]) -> int:
    """Run ``records`` live and replayed under each policy; assert they agree; how many walks compared."""
    tasks = [GraphTask.of(r) for r in records]
    items = [LiveItem(r.id, r.request, r.gold, r.metric, r.family) for r in records]
    replayer = Replayer(
        ProfileSet(None, []),
        estimators,
        max_steps=settings.routing.max_steps,
        latency=simulated_latency(settings),
        extension=simulated_extension(settings),
    )
    graphs = GraphReplayer(replayer)
    compared = 0
    with live_system(settings, estimator_source=lambda: estimators) as app:
        sessions = app.hera_runtime.sessions
        for name in policies:
            batch = submit(app, items, name)
            ids = wait(app.hera_runtime.read_sessions, batch, timeout_s=300)
            runs, _stats = graphs.run(create_policy(name, settings.routing), tasks)
            live = {o.key: (o, request_id) for o, request_id in zip(outcomes(sessions, ids), ids, strict=True)}
            for run in runs:
                top, top_id = live[run.outcome.key]
                assert (run.outcome.status, run.outcome.answer, run.outcome.score) == (
                    top.status,
                    top.answer,
                    top.score,
                ), (name, run.outcome.key)
                own = len(top.steps)  # the request's own steps (for a graph: its planning walk)
                assert [(s.executor, s.branch, s.seq) for s in run.outcome.steps[:own]] == [
                    (s.executor, s.branch, s.seq) for s in top.steps
                ], (name, run.outcome.key)
                assert own == len(run.outcome.steps) or run.planned
                compared += 1
                with session_scope(sessions) as session:
                    rows = {n.key: n for n in PlanNodeRepository(session).for_request(top_id) if n.child_id}
                    depth = {key: row.depth_steps for key, row in rows.items()}
                assert len(rows) == len(run.nodes)  # the nodes that started
                for node in run.nodes:
                    [node_live] = outcomes(sessions, [node_request_id(top_id, node.key)])
                    assert [(s.executor, s.branch, s.seq) for s in node.outcome.steps] == [
                        (s.executor, s.branch, s.seq) for s in node_live.steps
                    ], (name, run.outcome.key, node.key)
                    assert node.outcome.answer == node_live.answer
                    assert node.position.depth_steps == depth[node.key]  # the position the live κ read
                    compared += 1
    return compared


@pytest.mark.parametrize("mode", ["position", "depth"])
def test_graph_replay_takes_the_live_pipelines_steps_to_its_answers(tmp_path: Path, mode: str) -> None:
    settings = load_settings(data_dir=tmp_path, simulator={"seed": SEED}, routing={"graph_kappa": mode})
    upgrade(settings.database_url)
    assert _agree(settings, hashed_estimators(), generate("graph", 4, SEED), POLICIES) >= 2 * 4 * 4


def test_decomposed_steps_replayed_part_by_part_agree_with_the_pipeline(tmp_path: Path) -> None:
    """Partial and all-or-nothing SD: the replay runs the parts (``run_parts``) as the pipeline does."""
    settings = load_settings(
        data_dir=tmp_path,
        simulator={"seed": SEED},
        routing={"use_urc": False, "use_sse": False, "use_sle": False, "use_cd": False, "kappa_base": 0.3},
    )
    upgrade(settings.database_url)
    estimators = replace(hashed_estimators(), sd=SplitInTwo())
    records = [*generate("mixed", 6, SEED), *generate("graph", 2, SEED)]
    assert _agree(settings, estimators, records, ("hera-sd-partial", "hera")) >= 2 * 8
