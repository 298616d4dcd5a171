"""Replay: evaluate a routing policy on profiled trees, without running the agent again.

A profiled tree (``training/profiling.py``) holds, for one request, the subtask each model writes
after each node, with that call's tokens and cost, down to the step limit. Any policy's run of the
request is one root-to-leaf walk: at each node the policy decides (exactly as the router task
would, with the same :class:`~hera_router.routing.base.RoutingContext` and estimators), and the
walk follows the child of the chosen model. Spans (URC, SLE, CD) are honoured as the pipeline
honours them: the covered steps go to the SLM without asking the policy again.

Leaving the tree. The profiler expands nodes within a node budget (paths with few model switches
first), so a policy that switches models often can reach a node whose child for the chosen model
was never profiled. The replay then stops that request and marks it ``off_tree`` (counted and
reported, and left out of the metrics), unless ``extend`` backends are given: then the missing
step is run on that backend, added to the tree (so every later policy reuses it) and counted as an
extended step. With the simulated backends (deterministic at temperature 0) an extended step is
exactly the step a live run would take.

Two approximations, both counted: an SD decision (the SLM runs sub-subtasks in place of the step)
has no node in the tree, so the walk follows the SLM child of the step (``sd_approximated``), or,
for a partial decomposition whose last part (the one that produces the step's result) runs on the
LLM, the step's LLM child — unless ``run_parts`` is on and extension backends are given: then the
parts run on their executors exactly as the pipeline runs them (each prompted with the request's
history and the parts before it), the step's result is the last part's, and the decomposed step is
counted in ``sd_run`` instead (the graph replay, ``evaluation/graphs.py``, always does this);
and latency is the preset's latency model on the step's tokens, without the simulator's per-call
jitter, since profiles do not store latency (``latency="model"``), or 0 for real profiles.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.agent.scoring import score
from hera_router.backends.base import GenerationParams, ModelBackend, mean_logprob
from hera_router.db.enums import Executor
from hera_router.routing import oracle, steps
from hera_router.routing.base import Decision, GraphPosition, Policy, PolicyUnavailableError, RoutingContext, Step
from hera_router.routing.estimators import Estimators
from hera_router.training.caching import CachingEstimators
from hera_router.training.outcomes import RequestOutcome, StepRecord
from hera_router.training.profiling import ROOT, STEP, step_correctness
from hera_router.training.profiling import TreeNode as ProfiledNode

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from hera_router.config import Settings

LatencyModel = Callable[[Executor, int, int], float]
"""(executor, prompt tokens, completion tokens) → seconds."""

DEFAULT_FAMILY = "all"
PLANNED = "plan"
"""Note of an outcome that ended at a plan with dependencies (``Replayer.stop_at_plans``)."""


@dataclass
class Node:
    """A replayable tree node: the subtask ``text`` (or final answer), and the call that wrote it."""

    text: str
    depth: int
    is_final: bool = False
    output: str | None = None
    """The result the producing model gave for the parent subtask."""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    confidence: float | None = None
    """Mean token logprob of the call that wrote this node (what the verify stage reads)."""
    step_correct: bool | None = None
    children: dict[Executor, Node] = field(default_factory=dict)
    extended: bool = False
    """Added by a replay with ``extend`` backends, not by the profiler."""
    decomposed: dict[tuple[tuple[str, ...], tuple[Executor, ...]], tuple[Node, tuple[Part, ...]]] = field(
        default_factory=dict
    )
    """Decomposed steps run on the extension backends (``run_parts``): (parts, their executors) →
    (the node the step leads to, the part calls)."""
    moves: dict[tuple[int, bool], steps.Move] = field(default_factory=dict, repr=False, compare=False)
    """What the request does after the step that reached this node (``routing/steps.after_step``), per
    (step limit, whether plans stop the walk): computed once per node."""


@dataclass(frozen=True, slots=True)
class Part:
    """One decomposition part run on an extension backend (``Replayer.run_parts``)."""

    text: str
    executor: Executor
    output: str
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass
class ReplayTree:
    key: str
    request: str
    root: Node
    family: str = DEFAULT_FAMILY
    gold: str | None = None
    metric: str | None = None
    profiled: list[ProfiledNode] = field(default_factory=list)
    """The profiler's nodes (for the Oracle search and the HybridLLM samples)."""

    def all_llm_cost(self) -> float | None:
        """Remote cost of the All-LLM chain when the tree holds it to an answer (or the step limit)."""
        node, total = self.root, 0.0
        while Executor.LLM in node.children:
            node = node.children[Executor.LLM]
            total += node.cost_usd
        return total if node is not self.root else None

    def oracle_tree(self, max_depth: int) -> oracle.TreeNode:
        return oracle.tree_from_rows((_Row.of(n) for n in self.profiled), max_depth)


@dataclass(frozen=True, slots=True)
class _Row:
    """A profiled node in the shape ``oracle.tree_from_rows`` reads (it was written for DB rows)."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    kind: str
    producing_model: Executor | None
    text: str
    depth: int
    is_final: bool
    correct: bool | None

    @classmethod
    def of(cls, node: ProfiledNode) -> _Row:
        return cls(
            id=_as_uuid(node.id),
            parent_id=_as_uuid(node.parent) if node.parent is not None else None,
            kind=node.kind,
            producing_model=node.producing_model,
            text=node.text,
            depth=node.depth,
            is_final=node.is_final,
            correct=node.correct,
        )


def _as_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:  # trees built in memory number their nodes "0", "1", ...
        return uuid.uuid5(uuid.NAMESPACE_OID, value)


def build_tree(key: str, nodes: Sequence[ProfiledNode], meta: RequestMeta | None = None) -> ReplayTree:
    """A :class:`ReplayTree` from one request's profiled nodes (decompositions are not steps)."""
    by_id: dict[str, Node] = {}
    root: Node | None = None
    request = ""
    for profiled in nodes:  # parents come before their children (load order is insertion order)
        if profiled.kind not in (ROOT, STEP):
            continue
        node = Node(
            text=profiled.text,
            depth=profiled.depth,
            is_final=profiled.is_final,
            output=profiled.output,
            tokens_in=profiled.tokens_in,
            tokens_out=profiled.tokens_out,
            cost_usd=profiled.cost_usd,
            confidence=profiled.confidence,
            step_correct=profiled.step_correct,
        )
        by_id[profiled.id] = node
        if profiled.kind == ROOT:
            root, request = node, profiled.text
    for profiled in nodes:
        if profiled.kind != STEP or profiled.parent is None or profiled.producing_model is None:
            continue
        parent, child = by_id.get(profiled.parent), by_id.get(profiled.id)
        if parent is not None and child is not None:
            parent.children[profiled.producing_model] = child
    if root is None:
        raise ValueError(f"request {key!r}: the profile holds no root node")
    meta = meta or RequestMeta()
    return ReplayTree(key, request, root, meta.family, meta.gold, meta.metric, list(nodes))


# -- loading a profile run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestMeta:
    family: str = DEFAULT_FAMILY
    gold: str | None = None
    metric: str | None = None


@dataclass
class ProfileSet:
    """The trees of one profile run, with what the run was."""

    run_id: uuid.UUID | None
    trees: list[ReplayTree]
    config: dict[str, Any] = field(default_factory=dict)
    simulated: bool = True

    @property
    def max_depth(self) -> int:
        return int(self.config.get("max_depth", 15))

    def subset(self, keys: Sequence[str]) -> ProfileSet:
        wanted = set(keys)
        return ProfileSet(self.run_id, [t for t in self.trees if t.key in wanted], self.config, self.simulated)

    def all_llm_costs(self) -> dict[str, float]:
        return {t.key: cost for t in self.trees if (cost := t.all_llm_cost()) is not None}


def request_meta(settings: Settings, config: Mapping[str, Any]) -> dict[str, RequestMeta]:
    """Family, gold answer and metric of every request a profile run's config names."""
    if config.get("file"):
        meta: dict[str, RequestMeta] = {}
        with Path(config["file"]).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                row = json.loads(line)
                extra = row.get("metadata") or {}
                family = str(row.get("family") or extra.get("family") or DEFAULT_FAMILY)
                gold = row.get("gold", row.get("gold_answer"))
                metric = row.get("metric") or extra.get("metric")
                meta[str(row.get("id") or f"line-{number}")] = RequestMeta(family, gold, metric)
        return meta
    from hera_router.simulator.generate import generate_tasks
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    preset = str(config.get("preset", settings.simulator.preset))
    seed = int(config.get("world_seed", settings.simulator.seed))
    shape = load_behaviour(preset, settings.simulator.config_path).world
    offset, n = int(config.get("offset", 0)), int(config["n"])
    records = generate_tasks(World(seed, shape), str(config["family"]), offset + n)[offset:]
    return {r.id: RequestMeta(r.family, r.gold, r.metric) for r in records}


def load_profile(settings: Settings, sessions: sessionmaker[Session], run_id: uuid.UUID) -> ProfileSet:
    """Every tree of a finished profile run, with each request's family and gold answer."""
    from hera_router.db.repositories import ProfilingRepository
    from hera_router.db.session import session_scope
    from hera_router.training.profiling import load_trees

    with session_scope(sessions) as session:
        run = ProfilingRepository(session).get_run(run_id)
        if run is None:
            raise LookupError(f"profile run {run_id} does not exist")
        config, source = dict(run.config), run.source
    meta = request_meta(settings, config)
    trees = [build_tree(key, nodes, meta.get(key)) for key, nodes in load_trees(sessions, run_id).items()]
    trees.sort(key=lambda t: t.key)
    return ProfileSet(run_id, trees, config, simulated=source == "sim")


def simulated_latency(settings: Settings) -> LatencyModel:
    """The simulator preset's latency model (jitter-free) for the two roles."""
    from hera_router.simulator.presets import load_behaviour

    behaviour = load_behaviour(settings.simulator.preset, settings.simulator.config_path)
    slm, llm = behaviour.role("slm"), behaviour.role("llm")

    def latency(executor: Executor, tokens_in: int, tokens_out: int) -> float:
        model = slm if executor is Executor.SLM else llm
        return model.latency_s(tokens_in, tokens_out, 0.0)

    return latency


def no_latency(executor: Executor, tokens_in: int, tokens_out: int) -> float:
    return 0.0


# -- the walk ------------------------------------------------------------------------------------


@dataclass
class Extension:
    """Backends that run the steps a profile lacks (see the module docstring), and their prices."""

    backends: Mapping[Executor, ModelBackend]
    cost: Callable[[Executor, Any], float]
    params: Mapping[Executor, GenerationParams]
    steps: int = 0


@dataclass
class ReplayStats:
    """What a replay had to approximate or add, per policy."""

    off_tree: int = 0
    extended_steps: int = 0
    sd_approximated: int = 0
    sd_run: int = 0
    """Decomposed steps whose parts ran on the extension backends (``run_parts``), not approximated."""

    def to_json(self) -> dict[str, int]:
        return {
            "off_tree": self.off_tree,
            "extended_steps": self.extended_steps,
            "sd_approximated": self.sd_approximated,
            "sd_run": self.sd_run,
        }


@dataclass
class _Walk:
    """One request's walk in progress: what it ran so far, as the pipeline's rows would hold it."""

    tree: ReplayTree
    policy: Policy
    stats: ReplayStats
    graph: GraphPosition | None
    history: list[Step] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    branch: str = ""
    """The branch of the decision whose span the walk is in."""

    def context(self, current: str, seq: int, max_steps: int, *, graph: bool = True) -> RoutingContext:
        """Where the request stands (the verify hop, like the pipeline's, reads no graph position)."""
        return RoutingContext(
            request_id=self.tree.key,
            request=self.tree.request,
            current=current,
            seq=seq,
            history=tuple(self.history),
            max_steps=max_steps,
            graph=self.graph if graph else None,
        )

    def outcome(self, status: Any, answer: str | None = None, note: str = "") -> RequestOutcome:
        tree = self.tree
        quality = score(tree.metric, answer, tree.gold) if tree.gold is not None and tree.metric else 0.0
        return RequestOutcome(tree.key, tree.family, status, tuple(self.steps), answer, quality, note)


class Replayer:
    """Replays policies over one profile set; shares an estimator cache across every policy."""

    def __init__(
        self,
        profile: ProfileSet,
        estimators: Estimators | None = None,
        *,
        max_steps: int = 15,
        latency: LatencyModel = no_latency,
        extension: Extension | None = None,
        cache: bool = True,
        run_parts: bool = False,
        stop_at_plans: bool = False,
    ) -> None:
        self.profile = profile
        self.cache = CachingEstimators(estimators) if estimators is not None and cache else None
        self.estimators = self.cache.bundle if self.cache is not None else estimators
        self.max_steps = max_steps
        self.latency = latency
        self.extension = extension
        self.run_parts = run_parts and extension is not None
        """Run a decomposed step's parts on the extension backends, each on its executor, exactly as
        the pipeline runs them (no ``sd_approximated``)."""
        self.stop_at_plans = stop_at_plans
        """End a walk at a step whose next subtask is a plan with dependencies (``agent/plan.py``):
        the outcome is ``completed`` with the plan's text as its answer and note :data:`PLANNED`
        (``evaluation/graphs.py`` runs the plan). Off: the plan is followed as a chain subtask."""

    def run(self, policy: Policy, keys: Sequence[str] | None = None) -> tuple[list[RequestOutcome], ReplayStats]:
        stats = ReplayStats()
        wanted = set(keys) if keys is not None else None
        trees = [t for t in self.profile.trees if wanted is None or t.key in wanted]
        outcomes = [self.request(tree, policy, stats) for tree in trees]
        stats.off_tree = sum(o.status == "off_tree" for o in outcomes)
        return outcomes, stats

    def _decide(self, walk: _Walk, node: Node, seq: int) -> tuple[Decision, float]:
        """The policy's decision at ``node`` (``routing/steps.decide``, as the router hop asks it) and
        the seconds it took, with what the estimator cache saved added back."""
        context = walk.context(node.text, seq, self.max_steps)
        saved_before = self.cache.saved_s if self.cache is not None else 0.0
        started = time.perf_counter()
        decision = steps.decide(walk.policy, context, self.estimators)
        elapsed = time.perf_counter() - started
        # Add back what the cache saved: the decision time an uncached router would have had.
        saved = (self.cache.saved_s - saved_before) if self.cache is not None else 0.0
        return decision, elapsed + saved

    def request(
        self, tree: ReplayTree, policy: Policy, stats: ReplayStats, graph: GraphPosition | None = None
    ) -> RequestOutcome:
        """One request's walk; ``graph`` is the node's place in its plan when the request is a node
        of a plan with dependencies (what the pipeline reads from a node request's metadata).

        Each step follows ``routing/steps.py`` as the live hops do: inside a span the step runs on
        the SLM unrouted, otherwise the policy decides; a decomposed step runs its parts (or is
        approximated); an SLM step a verifying policy judges may climb to the LLM; and the walk
        ends, or goes on, as :func:`~hera_router.routing.steps.after_step` says."""
        walk = _Walk(tree, policy, stats, graph)
        node, seq, span, interrupted = tree.root, 0, 1, False
        while True:
            if steps.continues_span(span, interrupted=interrupted):
                span -= 1
                taken = self._run(walk, node, seq, Executor.SLM, walk.branch, 0.0, routed=False)
            else:
                try:
                    decision, decision_s = self._decide(walk, node, seq)
                except PolicyUnavailableError as exc:
                    return walk.outcome("unavailable", note=str(exc))
                span, walk.branch = decision.span, decision.branch
                taken = self._decided(walk, node, seq, decision, decision_s)
            if isinstance(taken, str):
                return walk.outcome("off_tree", note=taken)
            child, interrupted = taken
            ended = self._ended(child, walk)
            if ended is not None:
                return ended
            node, seq = child, seq + 1

    def _decided(
        self, walk: _Walk, node: Node, seq: int, decision: Decision, decision_s: float
    ) -> tuple[Node, bool] | str:
        """A routed step: its parts run on the extension backends (``run_parts``), or the step is
        approximated by a child of the tree (an SD decision, see the module docstring)."""
        if decision.parts and self.run_parts:
            ran = self._parts(walk.tree, node, walk.history, decision, walk.stats)
            if ran is not None:
                joined, parts = ran
                walk.steps.extend(
                    StepRecord(
                        seq=seq,
                        executor=part.executor,
                        branch=decision.branch,
                        tokens_in=part.tokens_in,
                        tokens_out=part.tokens_out,
                        remote_cost_usd=part.cost_usd if part.executor is Executor.LLM else 0.0,
                        model_s=self.latency(part.executor, part.tokens_in, part.tokens_out),
                        decision_s=decision_s if number == 0 else 0.0,
                        routed=number == 0,
                    )
                    for number, part in enumerate(parts)
                )
                walk.history.append(Step(subtask=node.text, result=joined.output or "", executor=decision.executor))
                return joined, False
        executor = decision.executor
        if decision.parts:
            walk.stats.sd_approximated += 1
            if decision.part_executors and decision.part_executors[-1] is Executor.LLM:
                executor = Executor.LLM  # partial SD: the step's result comes from the LLM
        part = 1 if decision.parts else 0  # an approximated decomposition is judged as SD's parts are
        return self._run(walk, node, seq, executor, decision.branch, decision_s, routed=True, part=part)

    def _run(
        self,
        walk: _Walk,
        node: Node,
        seq: int,
        executor: Executor,
        branch: str,
        decision_s: float,
        *,
        routed: bool,
        part: int = 0,
    ) -> tuple[Node, bool] | str:
        """Step ``seq`` on ``executor`` (the child of ``node``), through the verify stage when it
        applies; (the node the walk continues from, whether the step climbed), or why it left the
        tree."""
        child = node.children.get(executor) or self._extend(walk.tree, node, walk.history, executor, walk.stats)
        if child is None:
            return f"step {seq} on the {executor.value} was not profiled"
        model_s = self.latency(executor, child.tokens_in, child.tokens_out)
        escalated = False
        if steps.verifies(walk.policy.verifies, steps.rung_of_executor(executor), part):
            verified = self._verify(walk, node, child, seq)
            if verified is None:
                return f"step {seq} escalated to the llm was not profiled"
            escalation, verify_s = verified
            decision_s += verify_s
            if escalation is not child:
                # Rejected: the same step again on the LLM; the SLM's time stays in the latency.
                child, executor, branch, escalated = escalation, Executor.LLM, "verify", True
                model_s += self.latency(executor, child.tokens_in, child.tokens_out)
        walk.steps.append(
            StepRecord(
                seq=seq,
                executor=executor,
                branch=branch,
                tokens_in=child.tokens_in,
                tokens_out=child.tokens_out,
                remote_cost_usd=child.cost_usd if executor is Executor.LLM else 0.0,
                model_s=model_s,
                decision_s=decision_s,
                routed=routed,
                escalated=escalated,
            )
        )
        walk.history.append(
            Step(subtask=node.text, result=child.output or "", executor=executor, confidence=child.confidence)
        )
        return child, escalated

    def _ended(self, child: Node, walk: _Walk) -> RequestOutcome | None:
        """How the walk ends at ``child`` (``routing/steps.after_step``, as ``pipeline/progress.hand_on``
        asks it), or None when it goes on. A plan with dependencies ends the walk with the plan's
        text (``stop_at_plans``, for ``evaluation/graphs.py`` to run), or is followed as a subtask."""
        key = (self.max_steps, self.stop_at_plans)
        move = child.moves.get(key)
        if move is None:  # a node's move depends on the node only: every later walk reuses it
            end = steps.StepEnd(
                seq=child.depth - 1,
                result=child.output or "",
                final_answer=child.text if child.is_final else None,
                next_subtask=None if child.is_final else child.text,
            )
            move = child.moves[key] = steps.after_step(end, self.max_steps, plans=self.stop_at_plans)
        if isinstance(move, steps.Next):
            return None
        if isinstance(move, steps.Finish):
            return walk.outcome("completed", move.answer if child.is_final else child.output)
        if isinstance(move, steps.FanOut):
            return walk.outcome("completed", move.text, PLANNED)
        return walk.outcome("failed", note=move.reason)

    def _parts(
        self, tree: ReplayTree, node: Node, history: Sequence[Step], decision: Any, stats: ReplayStats
    ) -> tuple[Node, tuple[Part, ...]] | None:
        """A decomposed step run as the pipeline runs it (``pipeline/execution.py``, ``progress.hand_on``):
        part k on its executor, prompted with the request's history and the parts before it, as step
        ``seq + k - 1``; the step ends with the last part, or with a part that gives the final answer.
        None without extension backends or at the step limit."""
        if self.extension is None or node.is_final or node.depth >= self.max_steps:
            return None
        executors = tuple(decision.part_executors) or (Executor.SLM,) * len(decision.parts)
        key = (tuple(decision.parts), executors)
        stats.sd_run += 1
        if key in node.decomposed:
            return node.decomposed[key]
        pairs = [(step.subtask, step.result) for step in history]
        parts: list[Part] = []
        parsed = None
        for number, (text, executor) in enumerate(zip(decision.parts, executors, strict=True), start=1):
            prior = pairs + [(p.text, p.output) for p in parts]
            messages = render_step_messages(tree.request, prior, text, node.depth + number - 1)
            generation = self.extension.backends[executor].generate(messages, self.extension.params[executor])
            parsed = parse_step(generation.text)
            parts.append(
                Part(
                    text,
                    executor,
                    parsed.result,
                    generation.prompt_tokens,
                    generation.completion_tokens,
                    self.extension.cost(executor, generation),
                )
            )
            self.extension.steps += 1
            stats.extended_steps += 1
            if parsed.is_final:
                break
        assert parsed is not None
        child = Node(
            text=parsed.final_answer or parsed.next_subtask or "",
            depth=node.depth + 1,
            is_final=parsed.final_answer is not None,
            output=parsed.result,
            tokens_in=sum(p.tokens_in for p in parts),
            tokens_out=sum(p.tokens_out for p in parts),
            cost_usd=sum(p.cost_usd for p in parts),
            extended=True,
        )
        node.decomposed[key] = (child, tuple(parts))
        return node.decomposed[key]

    def _verify(self, walk: _Walk, node: Node, child: Node, seq: int) -> tuple[Node, float] | None:
        """(the node the walk continues from, seconds the verify stage took) after an SLM step:
        ``child`` when the policy accepts (``routing/steps.after_verdict``), the LLM's child when it
        rejects (None if that was never profiled and cannot be extended)."""
        context = walk.context(node.text, seq, self.max_steps, graph=False)
        started = time.perf_counter()
        verdict = steps.verdict(walk.policy, context, child.confidence, self.estimators)
        elapsed = time.perf_counter() - started
        if steps.after_verdict(verdict, steps.rung_of_executor(Executor.SLM)) is None:
            return child, elapsed
        escalation = node.children.get(Executor.LLM) or self._extend(
            walk.tree, node, list(context.history), Executor.LLM, walk.stats
        )
        return (escalation, elapsed) if escalation is not None else None

    def _extend(
        self, tree: ReplayTree, node: Node, history: Sequence[Step], executor: Executor, stats: ReplayStats
    ) -> Node | None:
        if self.extension is None or node.is_final or node.depth >= self.max_steps:
            return None
        pairs = [(step.subtask, step.result) for step in history]
        messages = render_step_messages(tree.request, pairs, node.text, node.depth)
        generation = self.extension.backends[executor].generate(messages, self.extension.params[executor])
        parsed = parse_step(generation.text)
        child = Node(
            text=parsed.final_answer or parsed.next_subtask or "",
            depth=node.depth + 1,
            is_final=parsed.final_answer is not None,
            output=parsed.result,
            tokens_in=generation.prompt_tokens,
            tokens_out=generation.completion_tokens,
            cost_usd=self.extension.cost(executor, generation),
            confidence=mean_logprob(generation),
            step_correct=step_correctness(generation),
            extended=True,
        )
        node.children[executor] = child
        self.extension.steps += 1
        stats.extended_steps += 1
        return child


def simulated_extension(settings: Settings) -> Extension:
    """Extension backends for a simulated profile: the configured edge and cloud, live params."""
    from hera_router.backends.pricing import generation_cost
    from hera_router.backends.registry import create_backend

    def cost(executor: Executor, generation: Any) -> float:
        return generation_cost(settings, generation, "edge" if executor is Executor.SLM else "cloud")

    return Extension(
        backends={Executor.SLM: create_backend(settings, "edge"), Executor.LLM: create_backend(settings, "cloud")},
        cost=cost,
        params={
            Executor.SLM: GenerationParams(max_new_tokens=settings.edge.max_new_tokens, logprobs=True),
            Executor.LLM: GenerationParams(max_new_tokens=settings.cloud.max_new_tokens, logprobs=True),
        },
    )
