"""Request sets for the simulated world: JSONL rows with ids, request text, gold answer and metric.

Instance ``i`` of a family is drawn from its own seeded generator, so the first 100 requests of a
set of 1000 are the set of 100 (growing ``--n`` never reshuffles what was there).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from hera_router.agent.plan import render_plan
from hera_router.simulator.graph import GRAPH
from hera_router.simulator.presets import WorldShape
from hera_router.simulator.world import FAMILIES, World

MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One line of a request file."""

    id: str
    family: str
    request: str
    gold: str
    metric: str
    world_seed: int
    hops: int
    plan: list[str]
    """The canonical subtasks (what a perfect model would run), for reading and for tests."""
    difficulty: list[float]


def _rng(seed: int, family: str, index: int, attempt: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{family}:{index}:{attempt}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def generate_tasks(world: World, family: str, n: int) -> list[TaskRecord]:
    """``n`` distinct requests of ``family`` (``lookup``, ``arithmetic`` or ``mixed``, alternating;
    or ``graph``, comparisons and aggregations over several chains: simulator/graph.py)."""
    if family == GRAPH:
        return _graph_tasks(world, n)
    names = list(FAMILIES) if family == MIXED else [family]
    for name in names:
        world.family(name)  # raises a readable error for an unknown family
    records: list[TaskRecord] = []
    seen: set[str] = set()
    for index in range(n):
        name = names[index % len(names)]
        task_family = world.family(name)
        for attempt in range(100):
            instance = task_family.sample(_rng(world.seed, name, index, attempt))
            if instance.request not in seen:
                break
        seen.add(instance.request)
        plan = [task_family.hop_text(instance, op, instance.truth[level], 0) for level, op in enumerate(instance.ops)]
        records.append(
            TaskRecord(
                id=f"sim-{world.seed}-{name}-{index:05d}",
                family=name,
                request=instance.request,
                gold=instance.gold,
                metric=instance.metric,
                world_seed=world.seed,
                hops=instance.hops,
                plan=plan,
                difficulty=[task_family.difficulty(op, instance.truth[level]) for level, op in enumerate(instance.ops)],
            )
        )
    return records


def _graph_tasks(world: World, n: int) -> list[TaskRecord]:
    records: list[TaskRecord] = []
    seen: set[str] = set()
    for index in range(n):
        for attempt in range(100):
            instance = world.graphs.sample(_rng(world.seed, GRAPH, index, attempt))
            if instance.request not in seen:
                break
        seen.add(instance.request)
        records.append(
            TaskRecord(
                id=f"sim-{world.seed}-{GRAPH}-{index:05d}",
                family=GRAPH,
                request=instance.request,
                gold=instance.gold,
                metric=instance.metric,
                world_seed=world.seed,
                hops=sum(part.hops for part in instance.parts),
                # One line per plan node: what a perfect planning step writes.
                plan=render_plan(instance.plan()).splitlines(),
                difficulty=[
                    world.family(p.family).difficulty(op, p.truth[i])
                    for p in instance.parts
                    for i, op in enumerate(p.ops)
                ],
            )
        )
    return records


def generate(family: str, n: int, seed: int, shape: WorldShape | None = None) -> list[TaskRecord]:
    """Convenience: build the world for ``seed`` (default preset shape) and generate from it."""
    if shape is None:
        from hera_router.simulator.presets import load_behaviour

        shape = load_behaviour().world
    return generate_tasks(World(seed, shape), family, n)


def write_jsonl(records: Iterable[TaskRecord], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[TaskRecord]:
    """Records from a file written by :func:`write_jsonl`; a bad line is reported by number."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield TaskRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}, line {number}: not a simulated-world request ({exc})") from None
