"""The Oracle baseline (the HERA paper, §2): over profiled trees, the assignment with the most SLM use
that still reaches 90 % of All-LLM accuracy.

A profiled tree (``profile_nodes``) holds, for one request, every chain the two models can
produce: each node is a subtask, its children are the next subtask after running it on the SLM and
on the LLM, and a final node carries whether the answer it reached is correct. A root-to-leaf path
is therefore one assignment of models to the steps of the request, and its leaf says whether that
assignment answers correctly. The paper's Oracle "enumerates every assignment of every subtask and
picks the one that maximises SLM usage while reaching an accuracy threshold of 90 % of All-LLM
accuracy"; accuracy is a property of a set of requests, so the search is over one path per request:

    maximise  Σ_r usage(path_r)   subject to   #{r : path_r correct} ≥ ⌈0.9 · #{r : All-LLM correct}⌉

Per request only two candidates matter: the path of highest usage (``best``) and the correct path
of highest usage (``best_correct``). Starting from every ``best``, the constraint is met by
switching the requests whose ``best`` is wrong to their ``best_correct`` in order of the usage
they lose, smallest first. That greedy choice is optimal (the constraint counts requests and the
objective adds per request, so any optimal solution can be exchanged into the greedy one), and
always feasible, because every request whose All-LLM path is correct has a correct path.

Usage is the paper's SLM usage: the share of a request's steps on the SLM (``usage="share"``);
``usage="steps"`` counts SLM steps instead. Ties prefer a correct path, then more SLM steps, then a
shorter path.

Conventions for the stored trees (``tree_from_rows``): a step node's ``producing_model`` ran its
parent, so the models along a path are the producing models of the nodes below the root, and a
path has one step per edge. A node that is final carries the leaf's correctness (``None`` counts
as wrong: no gold, no credit). A childless, non-final node at the depth limit is a wrong leaf (the
request did not finish); one above the limit was not expanded (the node budget) and is skipped.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from hera_router.config import RoutingSettings
from hera_router.routing.base import Decision, Executor, PolicyBase, RoutingContext
from hera_router.routing.estimators import Estimators

Usage = Literal["share", "steps"]


@dataclass
class TreeNode:
    """One subtask of a profiled tree; ``children`` by the model that ran it."""

    text: str
    children: dict[Executor, TreeNode] = field(default_factory=dict)
    correct: bool | None = None
    """Only on leaves: whether the final answer reached is right (None: not a finished leaf)."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """A root-to-leaf path: the model of every step, and whether the request ended right."""

    executors: tuple[Executor, ...]
    correct: bool

    @property
    def slm_steps(self) -> int:
        return sum(e is Executor.SLM for e in self.executors)

    def usage(self, usage: Usage) -> float:
        if usage == "steps":
            return float(self.slm_steps)
        return self.slm_steps / len(self.executors) if self.executors else 0.0


def assignments(root: TreeNode) -> Iterator[Assignment]:
    """Every finished path of the tree (depth-first; iterative, so deep trees cannot overflow)."""
    stack: list[tuple[TreeNode, tuple[Executor, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if not node.children:
            if node.correct is not None and path:
                yield Assignment(path, node.correct)
            continue
        for executor, child in node.children.items():
            stack.append((child, (*path, executor)))


def all_llm(root: TreeNode) -> Assignment | None:
    """The All-LLM path, or None when the tree does not hold it to a finished leaf."""
    node: TreeNode = root
    path: tuple[Executor, ...] = ()
    while node.children:
        if Executor.LLM not in node.children:
            return None
        node, path = node.children[Executor.LLM], (*path, Executor.LLM)
    return Assignment(path, node.correct) if node.correct is not None and path else None


@dataclass(frozen=True, slots=True)
class OracleResult:
    assignments: dict[str, Assignment]
    """Request key (the root text, i.e. the request) → the chosen path."""
    all_llm_accuracy: float
    target_accuracy: float
    accuracy: float
    slm_usage: float
    """Mean SLM share over requests (the paper's metric), whatever ``usage`` was optimised."""
    skipped: tuple[str, ...] = ()
    """Requests left out: their tree holds no finished All-LLM path to compare against."""


def search(trees: Mapping[str, TreeNode], accuracy_fraction: float = 0.9, usage: Usage = "share") -> OracleResult:
    """The Oracle assignment over ``trees`` (see the module docstring)."""

    def rank(a: Assignment) -> tuple[float, bool, int, int]:
        return (a.usage(usage), a.correct, a.slm_steps, -len(a.executors))

    best: dict[str, Assignment] = {}
    best_correct: dict[str, Assignment] = {}
    llm_correct = 0
    skipped: list[str] = []
    for key, root in trees.items():
        reference = all_llm(root)
        if reference is None:
            skipped.append(key)
            continue
        llm_correct += reference.correct
        paths = list(assignments(root))
        best[key] = max(paths, key=rank)
        correct = [a for a in paths if a.correct]
        if correct:
            best_correct[key] = max(correct, key=rank)
    n = len(best)
    if n == 0:
        raise ValueError("no profiled tree holds a finished All-LLM path: nothing to compare the Oracle against")
    # The small epsilon keeps 0.9 * 10 = 9.000000000000002 from demanding 10 correct requests.
    required = math.ceil(accuracy_fraction * llm_correct - 1e-9)
    chosen = dict(best)
    have = sum(a.correct for a in chosen.values())
    switches = sorted((rank(best[k])[0] - rank(best_correct[k])[0], k) for k in best_correct if not best[k].correct)
    for _, key in switches[: max(0, required - have)]:
        chosen[key] = best_correct[key]
    accuracy = sum(a.correct for a in chosen.values()) / n
    return OracleResult(
        assignments=chosen,
        all_llm_accuracy=llm_correct / n,
        target_accuracy=required / n,
        accuracy=accuracy,
        slm_usage=sum(a.usage("share") for a in chosen.values()) / n,
        skipped=tuple(skipped),
    )


class ProfileNodeRow(Protocol):
    """What :func:`tree_from_rows` reads of a ``profile_nodes`` row (duck-typed: no SQLAlchemy here)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def parent_id(self) -> uuid.UUID | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def producing_model(self) -> Executor | None: ...
    @property
    def text(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def is_final(self) -> bool: ...
    @property
    def correct(self) -> bool | None: ...


def tree_from_rows(rows: Iterable[ProfileNodeRow], max_depth: int) -> TreeNode:
    """One request's tree from its ``profile_nodes`` rows (root and steps; decompositions ignored)."""
    nodes: dict[uuid.UUID, TreeNode] = {}
    root: TreeNode | None = None
    pending: list[tuple[ProfileNodeRow, TreeNode]] = []
    for row in rows:
        if row.kind not in ("root", "step"):
            continue
        node = TreeNode(row.text, correct=bool(row.correct) if row.is_final else None)
        nodes[row.id] = node
        if row.kind == "root":
            root = node
        else:
            pending.append((row, node))
    if root is None:
        raise ValueError("the rows hold no root node")
    for row, node in pending:
        parent = nodes.get(row.parent_id) if row.parent_id is not None else None
        if parent is None or row.producing_model is None:
            continue
        parent.children[row.producing_model] = node
        if not row.is_final and row.depth >= max_depth:
            node.correct = False  # stopped at the depth limit without an answer
    return root


# -- the policy ----------------------------------------------------------------------------------


def save_plan(result: OracleResult, path: Path) -> None:
    """Write the chosen assignments for :class:`OraclePolicy` (request text → executors)."""
    plans = {key: [e.value for e in a.executors] for key, a in result.assignments.items()}
    summary = {
        "all_llm_accuracy": result.all_llm_accuracy,
        "target_accuracy": result.target_accuracy,
        "accuracy": result.accuracy,
        "slm_usage": result.slm_usage,
    }
    path.write_text(json.dumps({"summary": summary, "plans": plans}, indent=1), encoding="utf-8")


class MissingOraclePlanError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "policy 'oracle' needs a plan searched over profiled trees: write one with "
            "hera_router.routing.oracle.save_plan and set HERA_ROUTING__ORACLE_PLAN_PATH to it"
        )


class OraclePolicy(PolicyBase):
    """Replays the Oracle's assignment of a profiled request, step by step.

    The plan is positional (step ``seq`` runs where the plan says); a live chain that leaves the
    profiled one (longer, or a request never profiled) goes to the LLM, scored ``planned = 0``.
    """

    name = "oracle"

    def __init__(self, settings: RoutingSettings) -> None:
        self.plan_path = settings.oracle_plan_path
        self._plans: dict[str, list[Executor]] | None = None

    def _load(self) -> dict[str, list[Executor]]:
        if self._plans is None:
            if self.plan_path is None or not self.plan_path.is_file():
                raise MissingOraclePlanError
            raw = json.loads(self.plan_path.read_text(encoding="utf-8"))["plans"]
            self._plans = {key: [Executor(e) for e in steps] for key, steps in raw.items()}
        return self._plans

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        started = time.perf_counter()
        plan = self._load().get(context.request)
        planned = plan is not None and context.seq < len(plan)
        executor = plan[context.seq] if plan is not None and planned else Executor.LLM
        return Decision(
            executor=executor,
            branch=self.name,
            policy=self.name,
            scores={"planned": float(planned)},
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )
