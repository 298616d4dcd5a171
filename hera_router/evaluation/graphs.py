"""Offline evaluation of plans with dependencies: a graph request replayed under any
policy, graph-aware κ against position κ at equal SLM share, partial SD against all-or-nothing.

A graph request's replay is what the pipeline does with it (``pipeline/progress.hand_on``,
``pipeline/graph.py``), one walk at a time:

1. its planning step: the request walked as a chain (``replay.Replayer`` with ``stop_at_plans``),
   decided by the policy, until a step's next subtask parses as a plan (``agent/plan.parse_plan``);
   a request whose steps never plan is replayed as the chain it is;
2. every node in plan order (a topological order) whose needs all answered (a failed node fails the
   graph; the nodes that do not need it still run, as they do live): its position from ``agent/plan.node_position``
   (the function the pipeline's fan-in calls, so ``depth`` κ reads the same ``GraphPosition``), its
   request ``render_node_request(text, answers of its needs)``, walked as a chain with that
   position (a node that plans again is replayed the same way, recursively);
3. the final node's answer scored against the graph's gold answer.

Trees are built on demand: each request (graph, node, chain) starts as a root with no children,
and every step runs on the simulated backends (``replay.simulated_extension``, deterministic at
temperature 0), added to the tree so that every later policy and threshold reuses it; decomposed
steps run their parts on their executors (``Replayer.run_parts``). So a replayed step is the step
a live run takes. What is approximated, counted per policy: latency (the preset's latency model
without jitter, summed over the steps as if the plan ran sequentially; the live pipeline runs
independent nodes concurrently) and nothing else on the simulator. Everything here is SIMULATED.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.agent.plan import final_node, node_position, parse_plan, render_node_request, shapes
from hera_router.agent.scoring import score
from hera_router.evaluation import metrics
from hera_router.evaluation.metrics import RequestOutcome
from hera_router.evaluation.render import LABEL, banner, clean, pct, pct_ci, points_ci, table, write_results
from hera_router.evaluation.stats import Indices, common_columns, interpolate, paired_draws, percentile_interval
from hera_router.evaluation.worlds import Progress, WorldTraining, bootstrapped, load_state, save_state, world_settings
from hera_router.routing import steps
from hera_router.routing.base import GraphPosition, Policy
from hera_router.training.replay import PLANNED, Node, Replayer, ReplayStats, ReplayTree

if TYPE_CHECKING:
    from hera_router.simulator.generate import TaskRecord

GRAPH_SHAPE = "graph"
"""Meta key of a node request's position (``pipeline.graph.GRAPH_SHAPE``; what ``from_meta`` reads)."""


@dataclass(frozen=True, slots=True)
class GraphTask:
    """A request to replay: a graph request, or a chain (which simply never plans)."""

    key: str
    request: str
    family: str
    gold: str | None = None
    metric: str | None = None

    @classmethod
    def of(cls, record: TaskRecord) -> GraphTask:
        return cls(record.id, record.request, record.family, record.gold, record.metric)


@dataclass(frozen=True, slots=True)
class NodeRun:
    """One node of a replayed plan: its key, the request it ran with, its position and its walk."""

    key: str
    request: str
    position: GraphPosition
    outcome: RequestOutcome


@dataclass
class GraphRun:
    """A replayed request: its outcome (every step of the planning walk and of every node), and,
    when it planned, its nodes in plan order."""

    outcome: RequestOutcome
    nodes: list[NodeRun] = field(default_factory=list)

    @property
    def planned(self) -> bool:
        return bool(self.nodes)


@dataclass
class GraphStats:
    replay: ReplayStats = field(default_factory=ReplayStats)
    planned: int = 0
    """Graph requests whose walk reached a plan."""
    chains: int = 0
    """Requests that never planned (chains, or a planning step that wrote a chain subtask)."""
    nodes: int = 0

    def to_json(self) -> dict[str, int]:
        return {**self.replay.to_json(), "planned": self.planned, "chains": self.chains, "nodes": self.nodes}


class GraphReplayer:
    """Replays graph requests (and chains) under any policy; every step runs on the simulator once
    and is reused (``replayer`` needs extension backends; ``stop_at_plans`` and ``run_parts`` are
    switched on)."""

    def __init__(self, replayer: Replayer) -> None:
        if replayer.extension is None:
            raise ValueError("a graph replay runs its steps on the extension backends; give the replayer some")
        replayer.stop_at_plans = True
        replayer.run_parts = True
        self.replayer = replayer
        self.trees: dict[str, ReplayTree] = {}

    def _tree(self, key: str, text: str) -> ReplayTree:
        """The (lazily extended) tree of the request ``text``: a request's steps depend on its text
        only, so every graph, node and policy with the same text shares one."""
        tree = self.trees.get(text)
        if tree is None:
            tree = self.trees[text] = ReplayTree(key, text, Node(text=text, depth=0))
        return tree

    def run(self, policy: Policy, tasks: Sequence[GraphTask]) -> tuple[list[GraphRun], GraphStats]:
        stats = GraphStats()
        runs = [self.request(task, policy, stats) for task in tasks]
        stats.replay.off_tree = sum(r.outcome.status == "off_tree" for r in runs)
        return runs, stats

    def request(self, task: GraphTask, policy: Policy, stats: GraphStats) -> GraphRun:
        outcome, nodes, _own = self._walk(task.key, task.request, policy, stats, None)
        if nodes:
            stats.planned += 1
        else:
            stats.chains += 1
        quality = (
            score(task.metric, outcome.answer, task.gold)
            if task.gold is not None and task.metric and outcome.status == "completed"
            else 0.0
        )
        final = RequestOutcome(
            task.key, task.family, outcome.status, outcome.steps, outcome.answer, quality, outcome.note
        )
        return GraphRun(final, nodes)

    def _walk(
        self, key: str, text: str, policy: Policy, stats: GraphStats, position: GraphPosition | None
    ) -> tuple[RequestOutcome, list[NodeRun], int]:
        """(outcome, nodes, model steps of this request's own chain: its ``current_seq`` + 1)."""
        top = self.replayer.request(self._tree(key, text), policy, stats.replay, position)
        own = top.steps[-1].seq + 1 if top.steps else 0
        plan = parse_plan(top.answer) if top.note == PLANNED else None
        if plan is None:
            return top, [], own
        seq = top.steps[-1].seq  # the planning step
        shape = shapes(plan)
        answers: dict[str, str] = {}
        done: dict[str, tuple[int, int]] = {}  # key -> (depth_steps, steps of its request)
        walked = list(top.steps)
        nodes: list[NodeRun] = []
        failure: tuple[str, str] | None = None  # (status, note) of the first node that did not answer
        for node in plan:
            if not steps.ready(node.needs, answers):
                continue  # a node it needs failed: it never starts (the others run on, as live)
            meta = node_position(seq, [done[need] for need in node.needs], shape[node.key], len(plan))
            at = GraphPosition.from_meta({GRAPH_SHAPE: meta})
            assert at is not None
            request = render_node_request(node.text, [(need, answers[need]) for need in node.needs])
            sub, inner, sub_own = self._walk(f"{key}/{node.key}", request, policy, stats, at)
            stats.nodes += 1
            nodes += [NodeRun(node.key, request, at, sub), *inner]
            walked += sub.steps
            if sub.status != "completed":
                if failure is None:
                    status = sub.status if sub.status in ("off_tree", "unavailable") else "failed"
                    failure = (status, steps.node_failed(node.key, sub.note).reason)
                continue
            answers[node.key] = sub.answer or ""
            done[node.key] = (meta["depth_steps"], sub_own)
        if failure is not None:
            return RequestOutcome(key, "graph", failure[0], tuple(walked), None, 0.0, failure[1]), nodes, own  # type: ignore[arg-type]
        answer = answers[final_node(plan).key]
        return RequestOutcome(key, "graph", "completed", tuple(walked), answer), nodes, own


# -- threshold sweeps and equal SLM share --------------------------------------------------------


@dataclass
class CurvePoint:
    threshold: float
    outcomes: list[RequestOutcome]

    @property
    def share(self) -> float:
        return metrics.slm_usage(self.outcomes)

    @property
    def accuracy(self) -> float:
        return metrics.accuracy(self.outcomes)


@dataclass
class EqualShareDelta:
    """Curve A against curve B at A's SLM shares: at each A point inside B's range, A's accuracy
    minus B's interpolated at that share; the mean over those points and at the operating point,
    with paired bootstrap intervals (the same resampled requests on every point of both curves)."""

    points: int
    mean_delta: float
    mean_delta_ci: tuple[float, float]
    operating_share: float
    operating_accuracy: float
    operating_other: float
    operating_delta: float
    operating_delta_ci: tuple[float, float]
    operating_in_range: bool
    identical: bool
    """Whether both curves routed every request identically (same steps and answers) at every threshold."""

    def to_json(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = clean(self.__dict__)
        return cleaned


def equal_share_delta(
    a: Sequence[CurvePoint], b: Sequence[CurvePoint], operating: float, resamples: int = 1000, seed: int = 0
) -> EqualShareDelta:
    columns = common_columns(*(p.outcomes for p in (*a, *b)))
    cols_a, cols_b = columns[: len(a)], columns[len(a) :]
    at = next(i for i, p in enumerate(a) if p.threshold == operating)

    def stats(pick: Indices | None) -> tuple[float, float, float, float, float, bool]:
        curve_b = [c.point(pick) for c in cols_b]
        deltas = []
        op: tuple[float, float, float, bool] = (math.nan, math.nan, math.nan, False)
        for i, c in enumerate(cols_a):
            share, accuracy = c.point(pick)
            other, in_range = interpolate(share, curve_b)
            if in_range:
                deltas.append(accuracy - other)
            if i == at:
                op = (share, accuracy, other, in_range)
        mean = float(np.mean(deltas)) if deltas else math.nan
        return mean, op[0], op[1], op[2], op[1] - op[2], op[3]

    mean, share, accuracy, other, delta, in_range = stats(None)
    keys = columns[0].keys if columns else []
    drawn = [stats(pick) for pick in paired_draws(len(keys), resamples, seed)]
    identical = all(_same(pa.outcomes, pb.outcomes) for pa, pb in zip(a, b, strict=False)) and len(a) == len(b)
    shares_b = [(c.point()[0], 0.0) for c in cols_b]
    points = sum(interpolate(c.point()[0], shares_b)[1] for c in cols_a)
    return EqualShareDelta(
        points=points,
        mean_delta=mean,
        mean_delta_ci=percentile_interval([d[0] for d in drawn]),
        operating_share=share,
        operating_accuracy=accuracy,
        operating_other=other,
        operating_delta=delta,
        operating_delta_ci=percentile_interval([d[4] for d in drawn]),
        operating_in_range=in_range,
        identical=identical,
    )


def _same(a: Sequence[RequestOutcome], b: Sequence[RequestOutcome]) -> bool:
    def walk(o: RequestOutcome) -> tuple[Any, ...]:
        return (o.key, o.status, o.answer, tuple((s.seq, s.executor, s.branch) for s in o.steps))

    return sorted(map(walk, a)) == sorted(map(walk, b))


# -- `hera-router eval graphs`: per world ---------------------------------------------------------

SD_POLICIES = ("hera", "hera-sd-partial", "hera-paper", "hera-paper-sd-partial")
KAPPA_GRID = tuple(round(0.1 * i, 2) for i in range(10))
"""κ base values swept for each κ mode (plus the policy's own operating value)."""


@dataclass
class GraphsConfig:
    out: Any
    workdir: Any
    worlds: Sequence[str] = ("default", "strong-slm", "weak-slm", "weak-logprob")
    seeds: Sequence[int] = (0, 1)
    train_n: int = 120
    node_budget: int = 64
    graph_n: int = 80
    chain_n: int = 60
    kappa_policies: Sequence[str] = ("hera",)
    sd_policies: Sequence[str] = SD_POLICIES
    grid: Sequence[float] = KAPPA_GRID
    resamples: int = 1000
    command: str = ""


@dataclass
class KappaCurve:
    policy: str
    mode: str
    family: str
    points: list[CurvePoint | SavedPoint]
    """Fresh points, or points read back from a saved world (no outcomes)."""


@dataclass
class GraphsWorld:
    preset: str
    seed: int
    sd_rows: list[dict[str, Any]]
    kappa: list[dict[str, Any]]
    curves: list[KappaCurve]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.preset} / seed {self.seed}"


def graph_tasks(settings: Any, family: str, n: int, offset: int) -> list[GraphTask]:
    from hera_router.simulator.generate import generate_tasks
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    shape = load_behaviour(settings.simulator.preset, settings.simulator.config_path).world
    records = generate_tasks(World(settings.simulator.seed, shape), family, offset + n)[offset:]
    return [GraphTask.of(r) for r in records]


def policy_at(name: str, routing: Any, mode: str, kappa_base: float | None, estimators: Any) -> tuple[Policy, Any]:
    """Policy ``name`` with κ mode ``mode`` and, when given, κ base ``kappa_base`` (a calibrated
    policy reads it from the calibration, so the bundle's calibration is what changes)."""
    import dataclasses

    from hera_router.routing.hera import VARIANTS
    from hera_router.routing.registry import create_policy

    update: dict[str, Any] = {"graph_kappa": mode}
    calibrated = VARIANTS.get(name, {}).get("use_calibration", routing.use_calibration)
    bundle = estimators
    if kappa_base is not None:
        if calibrated and estimators is not None and estimators.calibration:
            calibration = {**estimators.calibration, "kappa_base": kappa_base}
            calibration["version"] = f"{estimators.calibration.get('version', 'calibration')}/kappa-base={kappa_base}"
            bundle = dataclasses.replace(estimators, calibration=calibration)
        else:
            update["kappa_base"] = kappa_base
    return create_policy(name, routing.model_copy(update=update)), bundle


def operating_kappa(name: str, routing: Any, estimators: Any) -> float:
    """The κ base ``name`` runs with on this deployment (its calibration's, or the settings')."""
    from hera_router.routing.hera import VARIANTS

    calibrated = VARIANTS.get(name, {}).get("use_calibration", routing.use_calibration)
    if calibrated and estimators is not None and estimators.calibration and "kappa_base" in estimators.calibration:
        return round(float(estimators.calibration["kappa_base"]), 4)
    return round(float(VARIANTS.get(name, {}).get("kappa_base", routing.kappa_base)), 4)


def replay_graphs(
    graphs: GraphReplayer, policy: Policy, bundle: Any, tasks: Sequence[GraphTask]
) -> tuple[list[GraphRun], GraphStats]:
    saved = graphs.replayer.estimators
    graphs.replayer.estimators = bundle
    try:
        return graphs.run(policy, tasks)
    finally:
        graphs.replayer.estimators = saved


def sd_row(name: str, family: str, runs: Sequence[GraphRun], stats: GraphStats, resamples: int) -> dict[str, Any]:
    from hera_router.evaluation.metrics import summarise

    outcomes = [r.outcome for r in runs]
    metrics = summarise(name, outcomes, {}, resamples=resamples, extra=stats.to_json())
    sd_steps = sum(1 for o in outcomes for s in o.steps if s.branch == "sd")
    sd_slm = sum(1 for o in outcomes for s in o.steps if s.branch == "sd" and s.executor.value == "slm")
    return {
        "policy": name,
        "family": family,
        "requests": metrics.requests,
        "counted": metrics.counted,
        "accuracy": metrics.accuracy,
        "accuracy_ci": metrics.accuracy_ci,
        "slm_share": metrics.slm_usage,
        "slm_share_ci": metrics.slm_usage_ci,
        "steps": metrics.subtasks_per_request,
        "remote_cost_usd": float(np.mean([o.remote_cost_usd for o in outcomes])) if outcomes else math.nan,
        "sd_part_calls": sd_steps,
        "sd_part_calls_slm": sd_slm,
        **stats.to_json(),
    }


def run_graphs_world(base: Any, preset: str, seed: int, config: GraphsConfig, progress: Any) -> GraphsWorld:
    import time

    from hera_router.db.migrate import upgrade
    from hera_router.db.runtime import Runtime
    from hera_router.estimators.loader import RegistryEstimatorSource

    started = time.perf_counter()
    training = WorldTraining(train_n=config.train_n, node_budget=config.node_budget)
    folder = config.workdir / f"{preset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / "graphs-result.json"
    if (found := load_world(saved, config)) is not None:
        progress.log(f"reusing {saved} (same bootstrap and configuration)")
        return found
    settings = world_settings(base, folder, preset, seed, training)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = load_state(folder)
    try:
        bootstrapped(runtime, state, training, progress)
        save_state(folder, state)
        estimators = RegistryEstimatorSource(runtime)()
    finally:
        runtime.close()
    world = evaluate_world(settings, estimators, config, progress)
    world.info["seconds"] = round(time.perf_counter() - started, 1)
    save_world(saved, world, config, state.get("bootstrap", {}).get("run_id"))
    return world


@dataclass(frozen=True, slots=True)
class SavedPoint:
    """A sweep point read back from a world's saved result (its outcomes are not kept)."""

    threshold: float
    share: float
    accuracy: float


def _world_key(config: GraphsConfig) -> dict[str, Any]:
    return {
        "train_n": config.train_n,
        "node_budget": config.node_budget,
        "graph_n": config.graph_n,
        "chain_n": config.chain_n,
        "grid": list(config.grid),
        "kappa_policies": list(config.kappa_policies),
        "sd_policies": list(config.sd_policies),
        "resamples": config.resamples,
    }


def _world_json(world: GraphsWorld) -> dict[str, Any]:
    return {
        "preset": world.preset,
        "seed": world.seed,
        "info": world.info,
        "kappa": world.kappa,
        "sd": world.sd_rows,
        "curves": [
            {
                "policy": c.policy,
                "mode": c.mode,
                "requests": c.family,
                "points": [{"kappa_base": p.threshold, "slm_share": p.share, "accuracy": p.accuracy} for p in c.points],
            }
            for c in world.curves
        ],
    }


def save_world(path: Any, world: GraphsWorld, config: GraphsConfig, bootstrap: str | None) -> None:
    write_results(path, {"key": _world_key(config), "bootstrap": bootstrap, "world": _world_json(world)})


def load_world(path: Any, config: GraphsConfig) -> GraphsWorld | None:
    """A world's saved result when it was made with this configuration and the folder's bootstrap."""
    import json

    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    bootstrap = load_state(path.parent).get("bootstrap", {}).get("run_id")
    if record.get("key") != _world_key(config) or record.get("bootstrap") != bootstrap or bootstrap is None:
        return None
    w = record["world"]

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    curves = [
        KappaCurve(
            c["policy"],
            c["mode"],
            c["requests"],
            [SavedPoint(p["kappa_base"], number(p["slm_share"]), number(p["accuracy"])) for p in c["points"]],
        )
        for c in w["curves"]
    ]
    return GraphsWorld(w["preset"], w["seed"], w["sd"], w["kappa"], curves, w["info"])


def evaluate_world(settings: Any, estimators: Any, config: GraphsConfig, progress: Any) -> GraphsWorld:
    """The graph and chain sets of one world replayed: SD modes, then the κ sweeps."""
    import time

    from hera_router.training.replay import ProfileSet, simulated_extension, simulated_latency

    started = time.perf_counter()
    preset, seed = settings.simulator.preset, settings.simulator.seed
    routing = settings.routing
    replayer = Replayer(
        ProfileSet(None, []),
        estimators,
        max_steps=routing.max_steps,
        latency=simulated_latency(settings),
        extension=simulated_extension(settings),
    )
    graphs = GraphReplayer(replayer)
    # Graph requests from past the training and evaluation requests; chains: the matrix's evaluation set.
    sets = {
        "graph": graph_tasks(settings, "graph", config.graph_n, config.train_n),
        "chains": graph_tasks(settings, "mixed", config.chain_n, config.train_n),
    }
    sd_rows: list[dict[str, Any]] = []
    with progress.task(
        f"partial vs all-or-nothing SD ({len(config.sd_policies)} policies)", len(config.sd_policies)
    ) as tick:
        for done, name in enumerate(config.sd_policies, start=1):
            for family, tasks in sets.items():
                policy, bundle = policy_at(name, routing, "position", None, estimators)
                runs, stats = replay_graphs(graphs, policy, bundle, tasks)
                sd_rows.append(sd_row(name, family, runs, stats, config.resamples))
            tick(done)
    curves: list[KappaCurve] = []
    kappa_rows: list[dict[str, Any]] = []
    for name in config.kappa_policies:
        operating = operating_kappa(name, routing, estimators)
        grid = sorted({*config.grid, operating})
        by: dict[tuple[str, str], KappaCurve] = {}
        with progress.task(f"κ sweep of {name} ({len(grid)} κ base values × 2 modes × 2 sets)", len(grid)) as tick:
            for done, kappa_base in enumerate(grid, start=1):
                for mode in ("position", "depth"):
                    policy, bundle = policy_at(name, routing, mode, kappa_base, estimators)
                    for family, tasks in sets.items():
                        runs, _stats = replay_graphs(graphs, policy, bundle, tasks)
                        curve = by.setdefault((mode, family), KappaCurve(name, mode, family, []))
                        curve.points.append(CurvePoint(kappa_base, [r.outcome for r in runs]))
                tick(done)
        curves += by.values()
        for family in sets:
            depth, position = (
                [p for p in by[(mode, family)].points if isinstance(p, CurvePoint)] for mode in ("depth", "position")
            )
            delta = equal_share_delta(depth, position, operating, config.resamples)
            kappa_rows.append({"policy": name, "family": family, "operating_kappa_base": operating, **delta.to_json()})
    progress.log(
        f"world {preset} / seed {seed}: {replayer.extension.steps if replayer.extension else 0} steps simulated"
    )
    info = {
        "estimator_versions": dict(estimators.versions) if estimators is not None else {},
        "calibration": dict(estimators.calibration or {}) if estimators is not None else {},
        "simulated_steps": replayer.extension.steps if replayer.extension else 0,
        "graph_requests": len(sets["graph"]),
        "chain_requests": len(sets["chains"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return GraphsWorld(preset, seed, sd_rows, kappa_rows, curves, info)


# -- the whole run and its report ----------------------------------------------------------------


@dataclass
class GraphsResult:
    worlds: list[GraphsWorld]
    seconds: float


def build_graphs(base: Any, config: GraphsConfig, progress: Any = None) -> GraphsResult:
    import time

    from hera_router.simulator.presets import load_behaviour

    progress = progress or Progress()
    if base.edge.backend != "sim" or base.cloud.backend != "sim":
        raise ValueError(
            "`eval graphs` runs on the simulated world; set HERA_EDGE__BACKEND and HERA_CLOUD__BACKEND to sim"
        )
    for preset in config.worlds:
        load_behaviour(preset, base.simulator.config_path)
    started = time.perf_counter()
    config.workdir.mkdir(parents=True, exist_ok=True)
    worlds = []
    pairs = [(preset, seed) for preset in config.worlds for seed in config.seeds]
    for number, (preset, seed) in enumerate(pairs, start=1):
        progress.log(f"world {number}/{len(pairs)}: preset {preset}, seed {seed}")
        worlds.append(run_graphs_world(base, preset, seed, config, progress))
        result = GraphsResult(worlds, time.perf_counter() - started)
        write_graphs(result, config)  # after every world: a long run leaves what it finished
    return GraphsResult(worlds, time.perf_counter() - started)


def kappa_table(worlds: Sequence[GraphsWorld]) -> str:
    headers = ["world", "policy", "requests", "operating κ base", "depth: SLM share % / accuracy %"]
    headers += ["position@share %", "depth − position@share, pts [95% CI]"]
    headers += ["mean over the sweep, pts [95% CI] (points)", "identical routing"]
    rows = []
    for w in worlds:
        for r in w.kappa:
            other = pct(r["operating_other"]) + ("" if r["operating_in_range"] else " (end of curve)")
            rows.append(
                [
                    w.name,
                    f"`{r['policy']}`",
                    r["family"],
                    f"{r['operating_kappa_base']:.2f}",
                    f"{pct(r['operating_share'])} / {pct(r['operating_accuracy'])}",
                    other,
                    points_ci(r["operating_delta"], r["operating_delta_ci"]),
                    f"{points_ci(r['mean_delta'], r['mean_delta_ci'])} ({r['points']})",
                    "yes" if r["identical"] else "no",
                ]
            )
    return table(headers, rows)


def sd_table(worlds: Sequence[GraphsWorld]) -> str:
    headers = ["world", "requests", "policy", "accuracy % [95% CI]", "SLM share % [95% CI]", "steps/req"]
    headers += ["cloud USD/req", "SD part calls (on the SLM)", "decomposed steps run"]
    rows = [
        [
            w.name,
            r["family"],
            f"`{r['policy']}`",
            pct_ci(r["accuracy"], r["accuracy_ci"]),
            pct_ci(r["slm_share"], r["slm_share_ci"]),
            f"{r['steps']:.2f}",
            f"{r['remote_cost_usd']:.5f}",
            f"{r['sd_part_calls']} ({r['sd_part_calls_slm']})",
            r["sd_run"],
        ]
        for w in worlds
        for r in w.sd_rows
    ]
    return table(headers, rows)


def curve_table(world: GraphsWorld) -> str:
    headers = ["policy", "requests", "κ base", "position: SLM share % / accuracy %", "depth: SLM share % / accuracy %"]
    rows = []
    by = {(c.policy, c.mode, c.family): c for c in world.curves}
    for (policy, mode, family), curve in by.items():
        if mode != "position":
            continue
        depth = by[(policy, "depth", family)]
        for p, d in zip(curve.points, depth.points, strict=True):
            position = f"{pct(p.share)} / {pct(p.accuracy)}"
            rows.append([f"`{policy}`", family, f"{p.threshold:.2f}", position, f"{pct(d.share)} / {pct(d.accuracy)}"])
    return table(headers, rows)


def render_graphs(result: GraphsResult, config: GraphsConfig) -> str:
    from datetime import UTC, datetime

    parts = [
        f"# Graphs: graph-aware κ and partial decomposition ({LABEL})",
        "",
        banner().rstrip(),
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} in {result.seconds:.0f} s (worlds evaluated "
        "earlier with the same configuration are read back from their folder's `graphs-result.json`) by:",
        "",
        f"```\n{config.command or 'hera-router eval graphs'}\n```",
        "",
        f"Worlds: {', '.join(w.name for w in result.worlds)}. Per world: the evaluation matrix's bootstrap "
        f"(`{config.train_n}` `lookup` requests profiled, estimators trained, calibrated and promoted, as "
        f"`hera-router bootstrap` does; reused from the world folder), then {config.graph_n} `graph` requests and "
        f"{config.chain_n} `mixed` chains (the matrix's evaluation requests) from offset {config.train_n}, "
        "replayed offline as graphs (`evaluation/graphs.py`): the planning step, every node as a chain with its "
        "graph position, answers rendered into the nodes that need them, the final node scored. Every step runs "
        "on the simulated backends (deterministic), decomposed steps run their parts on their executors; "
        "approximated: latency only (not reported here). Intervals: 95 % bootstrap over requests, paired.",
        "",
        f"## Graph-aware κ (`depth`) against position κ at equal SLM share ({LABEL})",
        "",
        "Per κ mode the κ base is swept over "
        f"{', '.join(f'{k:g}' for k in config.grid)} and the policy's operating value (a calibrated policy: "
        "its calibration's κ base is replaced). At each `depth` point whose SLM share lies inside the `position` "
        "curve, position's accuracy is interpolated at that share (as in the matrix's equal-share comparison); "
        "the operating column is the point at the policy's own κ base, the mean column averages every in-range point. "
        "Chains carry no graph position, so both modes must route them identically (last column).",
        "",
        kappa_table(result.worlds),
        "",
        f"## Partial decomposition against all-or-nothing ({LABEL})",
        "",
        "Each policy at its operating point, position κ. SD part calls: model calls of decomposition parts "
        "(on the SLM in brackets); decomposed steps run: SD decisions whose parts were run on the simulator.",
        "",
        sd_table(result.worlds),
        "",
    ]
    for w in result.worlds:
        parts += [
            f"## World {w.name}: κ sweeps ({LABEL})",
            "",
            f"{w.info.get('simulated_steps')} steps run on the simulator; calibration "
            f"{_calibrated(w.info.get('calibration', {}))}; "
            f"{w.info.get('seconds', 0):.0f} s.",
            "",
            curve_table(w),
            "",
        ]
    return "\n".join(parts)


def _calibrated(calibration: dict[str, Any]) -> str:
    shown = [
        f"{k} {float(calibration[k]):.3f}" for k in ("tau_req", "kappa_base", "verify_threshold") if k in calibration
    ]
    return ", ".join(shown) or "none"


def graphs_json(result: GraphsResult, config: GraphsConfig) -> dict[str, Any]:
    cleaned: dict[str, Any] = clean(
        {
            "label": LABEL,
            "command": config.command,
            "seconds": round(result.seconds, 1),
            "config": {
                "worlds": list(config.worlds),
                "seeds": list(config.seeds),
                "train_n": config.train_n,
                "graph_n": config.graph_n,
                "chain_n": config.chain_n,
                "grid": list(config.grid),
                "kappa_policies": list(config.kappa_policies),
                "sd_policies": list(config.sd_policies),
                "resamples": config.resamples,
            },
            "worlds": [_world_json(w) for w in result.worlds],
        }
    )
    return cleaned


def write_graphs(result: GraphsResult, config: GraphsConfig) -> None:
    from pathlib import Path

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(render_graphs(result, config), encoding="utf-8")
    write_results(out / "results.json", graphs_json(result, config))
