"""The ``facts`` family: grounded lookups whose facts and plan are written into the request."""

from __future__ import annotations

import os
import subprocess
import sys

from hera_router.agent.scaffold import ScaffoldBackend, parse_scaffold
from hera_router.agent.scoring import score
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.loop import run_request
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import FAMILIES, World
from tests.unit.agent.test_scaffold import CopyingModel


def _world() -> World:
    return World(0, load_behaviour("real-edge").world)


def test_a_request_states_every_fact_of_its_chain_among_distractors_and_a_plan() -> None:
    world = _world()
    family = world.family("facts")
    for record in generate_tasks(world, "facts", 20):
        scaffold = parse_scaffold(record.request)
        instance = world.parse_request(record.request)
        assert scaffold is not None
        assert instance is not None
        assert instance.family == "facts"
        assert instance.gold == record.gold
        assert 2 <= instance.hops <= 3
        chain = {family.fact_text(s, op) for s, op in zip(instance.truth, instance.ops, strict=False)}
        assert chain <= set(scaffold.facts)
        assert len(scaffold.facts) == instance.hops + 4
        assert len(scaffold.plan) == instance.hops
        assert "[1]" in scaffold.plan[1]


def test_requests_are_the_same_in_every_process() -> None:
    # Set iteration order depends on the process's hash seed; the requests must not.
    script = (
        "from hera_router.simulator.generate import generate_tasks\n"
        "from hera_router.simulator.presets import load_behaviour\n"
        "from hera_router.simulator.world import World\n"
        "w = World(0, load_behaviour('real-edge').world)\n"
        "print(repr([r.request for r in generate_tasks(w, 'facts', 5)]))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert repr([r.request for r in generate_tasks(_world(), "facts", 5)]) + "\n" in outputs


def test_facts_is_not_part_of_the_mixed_set() -> None:
    assert "facts" not in FAMILIES
    assert {r.family for r in generate_tasks(_world(), "mixed", 4)} == {"lookup", "arithmetic"}


def test_the_simulated_llm_and_the_scaffolded_copier_walk_the_same_plan() -> None:
    world = _world()
    llm = SimBackend("llm", "sim-llm", preset="perfect")
    copier = ScaffoldBackend(CopyingModel())
    for record in generate_tasks(world, "facts", 6):
        by_llm = run_request(record.request, {"llm": llm, "slm": copier}, lambda _s, _c: "llm")
        by_copier = run_request(record.request, {"llm": llm, "slm": copier}, lambda _s, _c: "slm")
        mixed = run_request(record.request, {"llm": llm, "slm": copier}, lambda s, _c: "slm" if s % 2 else "llm")

        for trace in (by_llm, by_copier, mixed):
            assert trace.finished
            assert score(record.metric, trace.final_answer, record.gold) == 1.0
        assert [s.subtask for s in by_llm.steps[1:]] == [s.subtask for s in by_copier.steps[1:]] == record.plan
