"""Profiling: for each request, the binary tree of SLM/LLM continuations (the HERA paper, §3.1).

The root is the request (ST_0). Expanding a node runs its subtask on both models, with the history
of the path that led to it, and gives two children: the subtask each model wrote next (or its
final answer). Nodes at depth ``max_depth`` (15, the agent's step limit) and final answers are
leaves.

Budget rule, when the full tree (up to 2^16 nodes) is too large: at most ``node_budget`` step
nodes per request; nodes are expanded in order of (model switches on their path, depth, creation
order, SLM before LLM). So the All-SLM and All-LLM chains (no switch) are always complete when the
budget allows ``2 × (their lengths)`` nodes, which URC and DP need; the remaining budget goes to
paths with one switch (the single-step swaps of Observation 3), shallow first, then two switches,
and so on. Deterministic: the same request and backends give the same tree.

Also recorded: the SLM's decomposition of every non-final subtask of the All-LLM chain, aimed at
the subtask the LLM wrote next (SD data; outside the step budget). The All-SLM / All-LLM chains
and their final-answer similarity are read off the tree (``labels.py``).

Shapes. The rule above is the ``full`` shape (both models at every expanded node). ``bootstrap``
profiles the lighter ``sampled`` shape by default, built to spend few cloud calls: both pure chains,
the SLM's alternative at every node of the All-LLM chain (an edge call), the LLM's alternative at a
sampled share (``llm_sample_rate``) of the All-SLM chain's nodes (chosen by a hash of the request
and the depth, so deterministic), and nothing below a switch. Every cloud call still gives a node
both models ran (the divergence estimator's label) wherever the LLM runs off its own chain, the
chains give URC and DP their labels, and the edge calls are the cheap ones. The node budget caps
both shapes. A request's calls in either shape are counted without any model by running the same
shape on the simulated backends (``training/bootstrap.py``'s plan).

Resumable: every request's tree is written in one transaction, and a resumed run skips the
requests that already have nodes.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hera_router.agent.format import (
    parse_decomposition,
    parse_step,
    render_decompose_messages,
    render_decomposition,
    render_step_messages,
)
from hera_router.agent.scoring import score
from hera_router.backends.base import Generation, GenerationParams, ModelBackend, mean_logprob
from hera_router.db.enums import Executor, RunStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from hera_router.config import Settings

ROOT, STEP, DECOMPOSITION = "root", "step", "decomposition"
FULL, SAMPLED = "full", "sampled"
SHAPES = (FULL, SAMPLED)
"""Tree shapes (module docstring): both models at every expanded node, or the cloud-light sample."""
CORRECT_SCORE = 0.5
"""A final answer scoring at least this against the gold answer counts as correct (F1 metrics)."""


@dataclass(frozen=True, slots=True)
class ProfileItem:
    """One request to profile, with its gold answer when known."""

    key: str
    request: str
    gold: str | None = None
    metric: str | None = None


@dataclass(slots=True)
class TreeNode:
    """A node of a profiling tree (see ``ProfileNode`` for the meaning of each field)."""

    id: str
    parent: str | None
    depth: int
    kind: str
    producing_model: Executor | None
    text: str
    output: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    is_final: bool = False
    correct: bool | None = None
    confidence: float | None = None
    """Mean token logprob of the call that wrote this node (None where the backend gives none)."""
    step_correct: bool | None = None
    """Ground truth of that call's own result (the simulator knows it; real backends do not)."""
    switches: int = field(default=0, compare=False)


CostFunction = Callable[[Executor, Generation], float]


def step_correctness(generation: Generation) -> bool | None:
    """Whether the call's own result was right, where the backend knows (the simulator only)."""
    flag = generation.extra.get("sim_correct")
    return None if not flag else flag == "1"


def _history(nodes: Mapping[str, TreeNode], node: TreeNode) -> list[tuple[str, str]]:
    """(subtask, result) pairs along the path to ``node``: each child's output is its parent's result."""
    pairs: list[tuple[str, str]] = []
    child = node
    while child.parent is not None:
        parent = nodes[child.parent]
        pairs.append((parent.text, child.output or ""))
        child = parent
    return pairs[::-1]


def sampled_for_llm(key: str, depth: int, rate: float) -> bool:
    """Whether the ``sampled`` shape runs the LLM at the All-SLM chain's node at ``depth`` of ``key``."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(f"llm-sample:{key}:{depth}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def _models_at(node: TreeNode, key: str, shape: str, llm_sample_rate: float) -> tuple[Executor, ...]:
    """The models that expand ``node``: both, except on the sampled shape's All-SLM chain."""
    if shape == FULL or node.producing_model in (None, Executor.LLM):
        return (Executor.SLM, Executor.LLM)
    return (Executor.SLM, Executor.LLM) if sampled_for_llm(key, node.depth, llm_sample_rate) else (Executor.SLM,)


def build_tree(
    item: ProfileItem,
    backends: Mapping[Executor, ModelBackend],
    *,
    node_budget: int,
    max_depth: int,
    decompose: bool,
    cost: CostFunction | None = None,
    params: GenerationParams | None = None,
    shape: str = FULL,
    llm_sample_rate: float = 1.0,
) -> list[TreeNode]:
    """The profiling tree of one request (root first, parents before children).

    ``shape`` and ``llm_sample_rate`` choose which nodes are expanded and by which models (module
    docstring); the default is the full tree under the budget rule.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown profile shape {shape!r}; choose one of {', '.join(SHAPES)}")
    # Logprobs on: the verify stage and the confidence baselines are trained and replayed from them.
    params = replace(params or GenerationParams(), logprobs=True)
    nodes: dict[str, TreeNode] = {}
    counter = 0

    def add(node: TreeNode) -> TreeNode:
        nodes[node.id] = node
        return node

    root = add(TreeNode(id="0", parent=None, depth=0, kind=ROOT, producing_model=None, text=item.request))
    frontier: list[tuple[int, int, int, str]] = [(0, 0, 0, root.id)]
    steps = 0
    while frontier and steps + 2 <= node_budget:
        _, _, _, node_id = heapq.heappop(frontier)
        parent = nodes[node_id]
        models = _models_at(parent, item.key, shape, llm_sample_rate)
        history = _history(nodes, parent)
        messages = render_step_messages(item.request, history, parent.text, parent.depth)
        for model in models:
            generation = backends[model].generate(messages, params)
            answer = parse_step(generation.text)
            final = answer.final_answer is not None
            counter += 1
            child = add(
                TreeNode(
                    id=str(counter),
                    parent=parent.id,
                    depth=parent.depth + 1,
                    kind=STEP,
                    producing_model=model,
                    text=answer.final_answer or answer.next_subtask or "",
                    output=answer.result,
                    tokens_in=generation.prompt_tokens,
                    tokens_out=generation.completion_tokens,
                    cost_usd=cost(model, generation) if cost is not None else 0.0,
                    is_final=final,
                    correct=(
                        score(item.metric, answer.final_answer, item.gold) >= CORRECT_SCORE
                        if final and item.gold is not None and item.metric is not None
                        else None
                    ),
                    confidence=mean_logprob(generation),
                    step_correct=step_correctness(generation),
                    switches=parent.switches + int(parent.producing_model not in (None, model)),
                )
            )
            steps += 1
            # A child with neither a next subtask nor a final answer is a dead end, like a
            # failed request in the agent loop.
            if not final and child.text and child.depth < max_depth and (shape == FULL or child.switches == 0):
                heapq.heappush(frontier, (child.switches, child.depth, counter, child.id))
    if decompose:
        nodes.update({n.id: n for n in _decompositions(item, nodes, backends[Executor.SLM], cost, params)})
    return list(nodes.values())


def llm_chain(nodes: Iterable[TreeNode]) -> list[TreeNode]:
    """The All-LLM path from the root: root, then the LLM child of each node in turn."""
    return _chain(list(nodes), Executor.LLM)


def slm_chain(nodes: Iterable[TreeNode]) -> list[TreeNode]:
    return _chain(list(nodes), Executor.SLM)


def _chain(nodes: Sequence[TreeNode], model: Executor) -> list[TreeNode]:
    children = {(n.parent, n.producing_model): n for n in nodes if n.kind == STEP}
    chain = [next(n for n in nodes if n.kind == ROOT)]
    while (child := children.get((chain[-1].id, model))) is not None:
        chain.append(child)
    return chain


def _decompositions(
    item: ProfileItem,
    nodes: Mapping[str, TreeNode],
    slm: ModelBackend,
    cost: CostFunction | None,
    params: GenerationParams,
) -> list[TreeNode]:
    chain = llm_chain(nodes.values())
    found: list[TreeNode] = []
    # Pairs (subtask, the LLM's next subtask after it), skipping the root (the request itself).
    for node, expected in itertools.pairwise(chain[1:]):
        if node.is_final or not node.text:
            continue
        messages = render_decompose_messages(node.text, item.request, None if expected.is_final else expected.text)
        generation = slm.generate(messages, params)
        parts = parse_decomposition(generation.text)
        if not parts:
            continue
        found.append(
            TreeNode(
                id=f"d{node.id}",
                parent=node.id,
                depth=node.depth,
                kind=DECOMPOSITION,
                producing_model=Executor.SLM,
                text=render_decomposition(parts),
                tokens_in=generation.prompt_tokens,
                tokens_out=generation.completion_tokens,
                cost_usd=cost(Executor.SLM, generation) if cost is not None else 0.0,
            )
        )
    return found


# --- requests to profile ----------------------------------------------------------------------


def simulated_items(settings: Settings, family: str, n: int, offset: int = 0) -> list[ProfileItem]:
    """Requests ``offset .. offset + n`` of ``family`` in the simulated world the sim backends use."""
    from hera_router.simulator.generate import generate_tasks
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    shape = load_behaviour(settings.simulator.preset, settings.simulator.config_path).world
    records = generate_tasks(World(settings.simulator.seed, shape), family, offset + n)[offset:]
    return [ProfileItem(r.id, r.request, r.gold, r.metric) for r in records]


def file_items(path: Path) -> list[ProfileItem]:
    """Requests from JSONL: ``world generate`` records, or objects with ``input`` (and optional
    ``id``, ``gold``, ``metric``)."""
    items = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                request = row.get("request") or row["input"]
            except (json.JSONDecodeError, KeyError, AttributeError):
                raise ValueError(f"{path}, line {number}: expected an object with 'request' or 'input'") from None
            items.append(
                ProfileItem(str(row.get("id") or f"line-{number}"), request, row.get("gold"), row.get("metric"))
            )
    return items


def items_for_run(settings: Settings, config: Mapping[str, Any]) -> list[ProfileItem]:
    """The requests a run's stored config names (so a resumed run profiles the same set)."""
    if config.get("file"):
        return file_items(Path(config["file"]))
    return simulated_items(settings, config["family"], int(config["n"]), int(config.get("offset", 0)))


# --- runs -------------------------------------------------------------------------------------


def run_config(
    settings: Settings,
    *,
    family: str | None = None,
    n: int | None = None,
    offset: int = 0,
    file: Path | None = None,
    node_budget: int | None = None,
    shape: str = FULL,
    llm_sample_rate: float = 1.0,
    decompose: bool | None = None,
) -> dict[str, Any]:
    """A run's stored configuration: what to profile and how (a resumed run reads it back).

    ``shape`` other than ``full`` is recorded with its sample rate; a full run's config has
    neither key, as before shapes existed.
    """
    estimators = settings.estimators
    if shape not in SHAPES:
        raise ValueError(f"unknown profile shape {shape!r}; choose one of {', '.join(SHAPES)}")
    config: dict[str, Any] = {
        "node_budget": node_budget or estimators.node_budget,
        "max_depth": estimators.max_depth,
        "decompose": estimators.decompose if decompose is None else decompose,
        "edge": {"backend": settings.edge.backend, "model": settings.edge.model},
        "cloud": {"backend": settings.cloud.backend, "model": settings.cloud.model},
    }
    if shape != FULL:
        config.update(shape=shape, llm_sample_rate=llm_sample_rate)
    if file is not None:
        config["file"] = str(file.resolve())
    else:
        config.update(
            family=family or estimators.profile_family,
            n=n or estimators.profile_requests,
            offset=offset,
            world_seed=settings.simulator.seed,
            preset=settings.simulator.preset,
        )
    return config


def create_run(sessions: sessionmaker[Session], name: str, source: str, config: Mapping[str, Any]) -> uuid.UUID:
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope

    with session_scope(sessions) as session:
        return ProfilingRepository(session).create_run(name, source, config).id


def profile_run(
    settings: Settings,
    sessions: sessionmaker[Session],
    run_id: uuid.UUID,
    *,
    backends: Mapping[Executor, ModelBackend] | None = None,
    on_request: Callable[[int, int], None] | None = None,
    guard: ProfileGuard | None = None,
) -> int:
    """Profile every request of the run not profiled yet, then close the run; returns the request count.

    Safe to call again on an interrupted (or redelivered) run: finished requests are skipped.
    Runs at the settings' training priority (training/priority.py). A ``guard`` is asked before
    each request; when it refuses one, the run is closed with the requests profiled so far (their
    count is returned) and nothing more is called.
    """
    from hera_router.training.priority import yielding_cpu

    with yielding_cpu(settings.estimators.training_priority):
        return _profile_run(settings, sessions, run_id, backends, on_request, guard)


class ProfileGuard(Protocol):
    """What may stop a profile run between two requests (a spending limit, ``training/bootstrap.py``)."""

    def allow(self, item: ProfileItem) -> bool:
        """Whether ``item`` may be profiled now."""
        ...

    def spent(self, item: ProfileItem, tree: Sequence[TreeNode]) -> None:
        """``item`` was profiled into ``tree`` (its nodes carry the calls' costs)."""
        ...


def _profile_run(
    settings: Settings,
    sessions: sessionmaker[Session],
    run_id: uuid.UUID,
    backends: Mapping[Executor, ModelBackend] | None,
    on_request: Callable[[int, int], None] | None,
    guard: ProfileGuard | None = None,
) -> int:
    from hera_router.backends.pricing import generation_cost
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope

    with session_scope(sessions) as session:
        repository = ProfilingRepository(session)
        run = repository.get_run(run_id)
        if run is None:
            raise LookupError(f"profile run {run_id} does not exist")
        config, done = dict(run.config), repository.request_keys(run_id)
        finished = run.status is not RunStatus.RUNNING
    items = items_for_run(settings, config)
    if finished:
        return len(items)
    if backends is None:
        from hera_router.backends.registry import create_backend

        backends = {Executor.SLM: create_backend(settings, "edge"), Executor.LLM: create_backend(settings, "cloud")}

    def cost(model: Executor, generation: Generation) -> float:
        return generation_cost(settings, generation, "edge" if model is Executor.SLM else "cloud")

    profiled = len(items)
    for index, item in enumerate(items):
        if item.key not in done:
            if guard is not None and not guard.allow(item):
                profiled = index
                break
            tree = build_tree(
                item,
                backends,
                node_budget=int(config["node_budget"]),
                max_depth=int(config["max_depth"]),
                decompose=bool(config["decompose"]),
                cost=cost,
                shape=str(config.get("shape", FULL)),
                llm_sample_rate=float(config.get("llm_sample_rate", 1.0)),
            )
            with session_scope(sessions) as session:
                store_tree(ProfilingRepository(session), run_id, item.key, tree)
            if guard is not None:
                guard.spent(item, tree)
        if on_request is not None:
            on_request(index + 1, len(items))
    with session_scope(sessions) as session:
        ProfilingRepository(session).finish_run(run_id, RunStatus.SUCCEEDED, n_requests=profiled)
    return profiled


def store_tree(repository: Any, run_id: uuid.UUID, key: str, tree: Sequence[TreeNode]) -> None:
    """Write one request's tree in one flush (ids made here: parents come before their children).

    The ids are derived from (run, request, node) so that a stored tree reads back in the same
    order every time (nodes are ordered by depth, then id): training is reproducible run to run.
    """
    ids = {node.id: uuid.uuid5(run_id, f"{key}\x1f{node.id}") for node in tree}
    repository.add_nodes(
        [
            {
                "id": ids[node.id],
                "run_id": run_id,
                "request_key": key,
                "parent_id": ids[node.parent] if node.parent is not None else None,
                "depth": node.depth,
                "kind": node.kind,
                "producing_model": node.producing_model,
                "text": node.text,
                "output": node.output,
                "tokens_in": node.tokens_in,
                "tokens_out": node.tokens_out,
                "cost_usd": node.cost_usd,
                "is_final": node.is_final,
                "correct": node.correct,
                "confidence": node.confidence,
                "step_correct": node.step_correct,
            }
            for node in tree
        ]
    )


def load_trees(sessions: sessionmaker[Session], run_id: uuid.UUID) -> dict[str, list[TreeNode]]:
    """Every request's tree of a run, as :class:`TreeNode` lists keyed by request key."""
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope

    trees: dict[str, list[TreeNode]] = {}
    with session_scope(sessions) as session:
        for row in ProfilingRepository(session).nodes(run_id):
            trees.setdefault(row.request_key, []).append(tree_node(row))
    return trees


def tree_node(row: Any) -> TreeNode:
    """A stored ``ProfileNode`` row as a :class:`TreeNode` (ids as strings)."""
    return TreeNode(
        id=str(row.id),
        parent=str(row.parent_id) if row.parent_id is not None else None,
        depth=row.depth,
        kind=row.kind,
        producing_model=row.producing_model,
        text=row.text,
        output=row.output,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cost_usd=row.cost_usd,
        is_final=row.is_final,
        correct=row.correct,
        confidence=row.confidence,
        step_correct=row.step_correct,
    )
