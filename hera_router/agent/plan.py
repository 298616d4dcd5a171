"""Plans with dependencies: a step that names several next subtasks and which results each needs.

A chain step answers ``NEXT: <one subtask>``. A step that fans out answers with one node per
line, each with a key and the keys of the earlier nodes whose results it needs::

    RESULT: Plan: 2 independent parts, then combine them.
    NEXT: [a] Which city is the birthplace of the director of the film Crimson Harbor?
        [b] Which city is the birthplace of the founder of Kelholt Pictures?
        [final <- a, b] Combine: are (a) and (b) the same city?

Each node is a request of its own (a chain the pipeline runs and routes step by step); a node
with needs starts when all of them have a final answer, and reads them in its request text
(:func:`render_node_request`). The node nobody needs (exactly one) gives the final answer.

Parsing is strict on purpose: a ``NEXT:`` that is not a well-formed plan (fewer than two nodes,
a duplicate key, a need that is not an earlier node, more than one sink) is an ordinary chain
subtask, so nothing an existing model writes changes meaning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_NODE = re.compile(r"^\s*\[(?P<key>[A-Za-z][A-Za-z0-9_-]{0,15})(?:\s*<-\s*(?P<needs>[^\]]*))?\]\s*(?P<text>\S.*?)\s*$")
GIVEN_LABEL = "Given:"
MAX_NODES = 16


@dataclass(frozen=True, slots=True)
class PlanNode:
    key: str
    text: str
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeShape:
    """Where a node sits in its plan (every number counts nodes, not model steps)."""

    level: int
    """Nodes on the longest dependency path before this one (0 for a node with no needs)."""
    to_final: int
    """Nodes on the longest path from this one to the final node (0 for the final node)."""
    descendants: int
    """Nodes that need this one's result, directly or not."""


def parse_plan(next_subtask: str | None) -> list[PlanNode] | None:
    """The plan a ``NEXT:`` value states, or None when it is a plain chain subtask."""
    if not next_subtask or "[" not in next_subtask:
        return None
    lines = [line for line in next_subtask.splitlines() if line.strip()]
    if not 2 <= len(lines) <= MAX_NODES:
        return None
    nodes: list[PlanNode] = []
    seen: set[str] = set()
    for line in lines:
        found = _NODE.match(line)
        if found is None:
            return None
        key = found["key"]
        needs = tuple(n.strip() for n in (found["needs"] or "").split(",") if n.strip())
        if key in seen or any(n not in seen for n in needs) or len(set(needs)) != len(needs):
            return None  # a repeated key, or a need that is not an earlier node: not a plan
        seen.add(key)
        nodes.append(PlanNode(key, found["text"], needs))
    needed = {n for node in nodes for n in node.needs}
    if sum(node.key not in needed for node in nodes) != 1:
        return None  # one node must give the final answer
    return nodes


def final_node(nodes: Sequence[PlanNode]) -> PlanNode:
    needed = {n for node in nodes for n in node.needs}
    return next(node for node in nodes if node.key not in needed)


def render_plan(nodes: Sequence[PlanNode]) -> str:
    return "\n".join(f"[{n.key}{' <- ' + ', '.join(n.needs) if n.needs else ''}] {n.text}" for n in nodes)


def render_node_request(text: str, inputs: Sequence[tuple[str, str]]) -> str:
    """A node's request: its text, then the answers of the nodes it needs, on one line."""
    if not inputs:
        return text
    given = "; ".join(f"({key}) {' '.join(answer.split())}" for key, answer in inputs)
    return f"{text} {GIVEN_LABEL} {given}."


def shapes(nodes: Sequence[PlanNode]) -> dict[str, NodeShape]:
    """Level, distance to the final node and descendants of every node (nodes are in plan order,
    which :func:`parse_plan` guarantees is a topological order)."""
    level: dict[str, int] = {}
    for node in nodes:
        level[node.key] = max((level[n] + 1 for n in node.needs), default=0)
    to_final: dict[str, int] = {node.key: 0 for node in nodes}
    below: dict[str, set[str]] = {node.key: set() for node in nodes}
    for node in reversed(nodes):
        for need in node.needs:
            to_final[need] = max(to_final[need], to_final[node.key] + 1)
            below[need] |= below[node.key] | {node.key}
    return {
        node.key: NodeShape(level=level[node.key], to_final=to_final[node.key], descendants=len(below[node.key]))
        for node in nodes
    }


def node_position(seq: int, needs: Sequence[tuple[int, int]], shape: NodeShape, nodes: int) -> dict[str, int]:
    """A starting node's place in its plan, as a node request's ``graph`` metadata records it (what
    ``routing.base.GraphPosition`` reads and graph-aware κ uses).

    ``seq`` is the planning step's sequence number; ``needs`` holds, per node this one needs, that
    node's ``depth_steps`` and the model steps its request took. ``depth_steps`` is the model steps
    on the longest path of results this node reads: the planning steps (``seq + 1``) for a node
    with no needs. The pipeline (``pipeline/graph.py``) and the offline graph replay
    (``evaluation/graphs.py``) both call this, so both route a node with the same position."""
    depth = max((depth_steps + steps for depth_steps, steps in needs), default=seq + 1)
    return {
        "level": shape.level,
        "to_final": shape.to_final,
        "descendants": shape.descendants,
        "depth_steps": depth,
        "nodes": nodes,
    }
