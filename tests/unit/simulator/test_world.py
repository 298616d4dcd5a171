"""Task generation: determinism, distinctness, request parsing, canonical plans, JSONL."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hera_router.agent.scoring import score
from hera_router.simulator.generate import generate, generate_tasks, read_jsonl, write_jsonl
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import World


def test_same_seed_gives_identical_tasks_and_different_seed_different() -> None:
    a, b, c = generate("mixed", 40, seed=3), generate("mixed", 40, seed=3), generate("mixed", 40, seed=4)

    assert a == b
    assert [t.request for t in a] != [t.request for t in c]
    assert len({t.request for t in c} & {t.request for t in a}) < 5


def test_growing_n_keeps_the_prefix() -> None:
    assert generate("lookup", 30, seed=1)[:10] == generate("lookup", 10, seed=1)


def test_requests_are_distinct_and_shaped_as_the_issue_asks(world: World) -> None:
    lookup = generate_tasks(world, "lookup", 200)
    arithmetic = generate_tasks(world, "arithmetic", 200)

    assert len({t.request for t in lookup + arithmetic}) == 400
    assert {t.hops for t in lookup} == set(range(2, 7))
    assert {t.hops for t in arithmetic} == set(range(3, 9))
    assert all(len(t.difficulty) == t.hops and all(0 <= d <= 1 for d in t.difficulty) for t in lookup + arithmetic)
    assert {t.metric for t in lookup} == {"entity"}
    assert {t.metric for t in arithmetic} == {"numeric"}


@pytest.mark.parametrize("family", ["lookup", "arithmetic"])
def test_request_text_parses_back_to_the_same_chain(world: World, family: str) -> None:
    task_family = world.family(family)
    rng = random.Random(11)
    for _ in range(100):
        instance = task_family.sample(rng)
        parsed = world.parse_request(instance.request)
        assert parsed is not None
        assert (parsed.ops, parsed.truth) == (instance.ops, instance.truth)


@pytest.mark.parametrize("family", ["lookup", "arithmetic"])
def test_canonical_plan_executed_perfectly_scores_100_and_wrong_answers_score_0(world: World, family: str) -> None:
    task_family = world.family(family)
    for task in generate_tasks(world, family, 100):
        instance = world.parse_request(task.request)
        assert instance is not None
        value = instance.start
        for subtask in task.plan:
            parsed = task_family.parse_subtask(subtask)
            assert parsed is not None
            assert parsed.kind == "hop"
            assert parsed.subject == value
            result = task_family.apply(parsed.op, parsed.subject)
            assert result is not None
            value = result
        assert score(task.metric, value, task.gold) == 1.0
        wrong = task_family.wrong_value(instance.ops[-1], instance.truth[-2], task.gold, random.Random(0))
        assert score(task.metric, wrong, task.gold) == 0.0


def test_a_request_from_another_world_is_mostly_unknown() -> None:
    # Names are drawn from a small pool, so a few start entities exist in both worlds.
    other = generate("lookup", 40, seed=99)
    here = World(0, load_behaviour().world)

    assert sum(here.parse_request(t.request) is not None for t in other) < 20
    assert here.parse_request("What is the capital of France?") is None


def test_jsonl_round_trip(tmp_path: Path) -> None:
    records = generate("mixed", 12, seed=5)
    path = tmp_path / "requests.jsonl"

    assert write_jsonl(records, path) == 12
    assert list(read_jsonl(path)) == records


def test_unreadable_line_is_reported_by_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "x"}\n', encoding="utf-8")

    with pytest.raises(ValueError, match="line 1"):
        list(read_jsonl(path))


def test_unknown_family_is_a_readable_error(world: World) -> None:
    with pytest.raises(ValueError, match="unknown task family 'poems'"):
        generate_tasks(world, "poems", 3)
