"""The offline graph replay (``evaluation/graphs.py``): plans replayed node by node with the
pipeline's graph positions, κ modes on chains, decomposed steps run part by part, equal share."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.config import load_settings
from hera_router.db.enums import Executor
from hera_router.evaluation.graphs import CurvePoint, GraphReplayer, GraphTask, equal_share_delta
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import generate
from hera_router.training.replay import ProfileSet, Replayer, simulated_extension
from tests.unit.evaluation.stubs import draw, hashed_estimators

SEED = 5


def _graphs(estimators: Estimators | None = None) -> GraphReplayer:
    settings = load_settings(simulator={"seed": SEED})
    replayer = Replayer(
        ProfileSet(None, []),
        estimators or hashed_estimators(),
        max_steps=settings.routing.max_steps,
        extension=simulated_extension(settings),
    )
    return GraphReplayer(replayer)


def test_a_graph_request_is_replayed_as_its_plan_with_the_pipelines_positions() -> None:
    graphs = _graphs()
    records = generate("graph", 6, SEED)
    runs, stats = graphs.run(create_policy("all-llm", load_settings().routing), [GraphTask.of(r) for r in records])
    assert stats.planned == 6
    assert stats.chains == 0
    assert sum(r.outcome.score for r in runs) >= 5  # the LLM gets (nearly) every graph right
    for run in runs:
        assert run.outcome.family == "graph"
        parts = [n for n in run.nodes if n.key != "final"]
        final = next(n for n in run.nodes if n.key == "final")
        assert all(p.position.depth_steps == 1 for p in parts)  # after the planning step
        assert final.position.depth_steps == 1 + max(len(p.outcome.steps) for p in parts)
        assert final.position.to_final == 0
        assert final.request.startswith("Combine: ")
        assert "Given: (a) " in final.request
        assert run.outcome.answer == final.outcome.answer
        assert len(run.outcome.steps) == 1 + sum(len(n.outcome.steps) for n in run.nodes)


def test_chains_route_identically_under_both_kappa_modes_and_graphs_need_not() -> None:
    graphs = _graphs()
    chains = [GraphTask.of(r) for r in generate("mixed", 6, SEED)]
    plans = [GraphTask.of(r) for r in generate("graph", 6, SEED)]
    routing = load_settings().routing
    points: dict[str, list[CurvePoint]] = {"position": [], "depth": []}
    for mode, curve in points.items():
        policy = create_policy("hera", routing.model_copy(update={"graph_kappa": mode}))
        runs, stats = graphs.run(policy, chains)
        assert stats.planned == 0
        curve.append(CurvePoint(0.6, [r.outcome for r in runs]))
    delta = equal_share_delta(points["depth"], points["position"], 0.6, resamples=50)
    assert delta.identical
    assert delta.operating_delta == 0.0
    graph_runs = {
        mode: graphs.run(create_policy("hera", routing.model_copy(update={"graph_kappa": mode})), plans)[0]
        for mode in ("position", "depth")
    }
    # On graphs the modes read different positions (the final node sits deeper than seq 0).
    assert all(n.position.depth_steps > 1 for r in graph_runs["depth"] for n in r.nodes if n.key == "final")


class SplitInTwo:
    """SD that splits some steps in two parts (the simulator runs any subtask text)."""

    version = "sd-split"

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        if draw("split", subtask) < 0.5:
            return []
        return [f"First, restate: {subtask}", subtask]


def test_decomposed_steps_run_their_parts_on_their_executors() -> None:
    from dataclasses import replace

    estimators = replace(hashed_estimators(), sd=SplitInTwo())
    graphs = _graphs(estimators)
    tasks = [GraphTask.of(r) for r in generate("mixed", 12, SEED)]
    routing = load_settings().routing.model_copy(
        update={"use_urc": False, "use_sse": False, "use_sle": False, "use_cd": False, "kappa_base": 0.3}
    )
    found, mixed = False, False
    for name in ("hera-sd-partial", "hera"):
        runs, stats = graphs.run(create_policy(name, routing), tasks)
        assert stats.replay.sd_approximated == 0
        sd = [s for r in runs for s in r.outcome.steps if s.branch == "sd"]
        if sd:
            found = True
            assert stats.replay.sd_run > 0
            # Two part calls per decomposed step (unless the first part already answered), same seq.
            assert len(sd) >= stats.replay.sd_run
            mixed = mixed or len({s.executor for s in sd}) == 2
        if name == "hera":
            assert all(s.executor is Executor.SLM for s in sd)  # all-or-nothing: every part on the SLM
    assert found, "no step was decomposed"
    assert mixed, "partial SD put no part on the LLM"


def test_a_world_is_evaluated_and_written_with_simulated_labels(tmp_path: Path) -> None:
    from hera_router.evaluation.graphs import GraphsConfig, GraphsResult, evaluate_world, write_graphs
    from hera_router.evaluation.worlds import Progress

    settings = load_settings(simulator={"seed": SEED})
    config = GraphsConfig(
        out=tmp_path / "out",
        workdir=tmp_path,
        graph_n=4,
        chain_n=4,
        grid=(0.2, 0.7),
        resamples=20,
        command="hera-router eval graphs --graph-n 4",
    )
    world = evaluate_world(settings, hashed_estimators(), config, Progress())
    assert {(r["policy"], r["family"]) for r in world.sd_rows} == {
        (p, f) for p in config.sd_policies for f in ("graph", "chains")
    }
    chains = next(r for r in world.kappa if r["family"] == "chains")
    assert chains["identical"]  # no graph position on a chain: the κ modes cannot differ
    assert chains["mean_delta"] == 0.0
    graph = next(r for r in world.kappa if r["family"] == "graph")
    assert graph["operating_kappa_base"] == 0.6  # hashed estimators have no calibration: the settings' κ base
    write_graphs(GraphsResult([world], 1.0), config)
    page = (tmp_path / "out" / "README.md").read_text()
    assert "SIMULATED" in page
    assert "hera-router eval graphs --graph-n 4" in page
    assert "`hera-paper-sd-partial`" in page
    assert (tmp_path / "out" / "results.json").is_file()
    # A world's result is saved in its folder and reused while the bootstrap and configuration hold.
    from hera_router.evaluation.graphs import load_world, save_world

    (tmp_path / "state.json").write_text('{"bootstrap": {"run_id": "r1"}}')
    save_world(tmp_path / "graphs-result.json", world, config, "r1")
    again = load_world(tmp_path / "graphs-result.json", config)
    assert again is not None
    assert again.kappa == world.kappa
    shares = [p.share for c in world.curves for p in c.points]
    assert [p.share for c in again.curves for p in c.points] == pytest.approx(shares, abs=1e-6)
    (tmp_path / "state.json").write_text('{"bootstrap": {"run_id": "r2"}}')  # bootstrapped again: not reused
    assert load_world(tmp_path / "graphs-result.json", config) is None
