"""The graph family: requests its own parser inverts, gold answers, plans the pipeline can run."""

from __future__ import annotations

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.agent.plan import final_node, parse_plan, render_node_request
from hera_router.backends.base import GenerationParams
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate
from hera_router.simulator.graph import CombineInstance, GraphInstance, combine_values
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import World

SEED = 3


def test_every_request_parses_back_with_its_gold_and_a_plan_that_fits_an_answer() -> None:
    world = World(SEED, load_behaviour().world)
    for record in generate("graph", 30, SEED):
        instance = world.parse_graph(record.request)
        assert isinstance(instance, GraphInstance)
        assert instance.gold == record.gold
        assert instance.gold == combine_values(instance.combine, [p.gold for p in instance.parts])
        assert world.parse_request(record.request) is None  # never mistaken for a chain
        plan = parse_plan("\n".join(record.plan))
        assert plan is not None
        assert final_node(plan).needs == instance.keys
        assert len(" ".join(record.plan).split()) <= 200


def test_the_llm_plans_and_combines_what_it_is_given() -> None:
    record = generate("graph", 1, SEED)[0]
    llm = SimBackend("llm", "sim-llm", seed=SEED)
    messages = render_step_messages(record.request, [], record.request, 0)
    answer = parse_step(llm.generate(messages, GenerationParams()).text)
    plan = parse_plan(answer.next_subtask)
    assert plan is not None
    final = final_node(plan)
    world = World(SEED, load_behaviour().world)
    combine = world.parse_graph(render_node_request(final.text, [(k, "7") for k in final.needs]))
    assert isinstance(combine, CombineInstance)
    assert combine.values == ("7",) * len(final.needs)


def test_a_chain_set_is_unchanged_by_the_family() -> None:
    # "mixed" alternates the chain families only: existing request sets stay what they were.
    assert {r.family for r in generate("mixed", 6, SEED)} == {"lookup", "arithmetic"}
