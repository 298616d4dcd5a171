"""``hera-router bootstrap``: plan, profile, train every estimator, promote them, calibrate, fit HybridLLM.

What a fresh install runs once so that the ``hera`` policy has estimators to consult:

1. profile ``estimators.profile_requests`` requests (trees of ``estimators.profile_shape``,
   logprobs kept), and ``estimators.urc_requests`` more whose pure chains URC learns from (its
   label is a whole-request outcome: it needs more requests than the per-step estimators; in the
   ``sampled`` shape they also carry the SLM's alternative along the All-LLM chain, which the
   divergence estimator learns from);
2. train and promote URC, SP_SLM, SP_LLM, DP, SD and the divergence estimator (in that order: the
   divergence heads read the active SP predictions);
3. calibrate τ_req, κ base and the verify threshold on ``estimators.calibration_requests`` more
   requests for the active versions (``training/calibration.py``) and promote the calibration;
4. fit the HybridLLM baseline's router on the same profile (``hera-router run -p hybridllm``
   then works out of the box).

Before any of it, :func:`plan_bootstrap` counts the calls, tokens and dollars per backend that
the profiles and the SD validation will make, without calling a model: it runs the same requests,
in the same shapes, on the simulated backends, and prices the tokens with the configured models'
prices. That is exact when the served models are the simulated ones; for real models the chain
lengths (and so the calls) are the simulated world's, an estimate. Real backends (anything but
``sim``) are never profiled without a confirmation (``--yes``) or a spending limit
(``--budget-usd``): :func:`unattended_problem` says so for the commands that would otherwise
bootstrap on their own. Under a limit, profiling stops before the request that would cross it
(its cost predicted from the plan, corrected by what the calls so far actually cost), later
profiles are skipped, and the estimators are trained on what was profiled if that is enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.db.enums import Executor
from hera_router.estimators import ESTIMATOR_NAMES
from hera_router.training.labels import request_trees
from hera_router.training.profiling import (
    DECOMPOSITION,
    FULL,
    STEP,
    ProfileItem,
    TreeNode,
    create_run,
    items_for_run,
    load_trees,
    profile_run,
    run_config,
)
from hera_router.training.trainers import TrainResult, train_estimator

if TYPE_CHECKING:
    from hera_router.backends.base import BackendRole
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime

ROLES: tuple[BackendRole, ...] = ("edge", "cloud")
MIN_TRAIN_REQUESTS = 10
"""Fewer profiled training requests than this (a budget stopped early): nothing is trained."""
MIN_CALIBRATION_REQUESTS = 10
"""A calibration profile cut shorter than this is not searched on (the validation halves are)."""
SD_ORACLE_TOKENS = 128
"""The SD validation's SSE test asks each model for at most this many tokens per part."""


def uses_real_backends(settings: Settings) -> bool:
    """Whether bootstrap would call anything but the simulated models."""
    return settings.edge.backend != "sim" or settings.cloud.backend != "sim"


def unattended_problem(settings: Settings) -> str | None:
    """Why a command must not bootstrap by itself here (real backends cost calls), or None.

    For commands that would bootstrap when no estimators are active (``run``; any process that
    wants to): on the simulated backends they may, as before; on real ones the user must look
    at the plan and confirm it.
    """
    if not uses_real_backends(settings):
        return None
    return (
        f"bootstrapping calls the configured models (edge: {settings.edge.backend} {settings.edge.model}, "
        f"cloud: {settings.cloud.backend} {settings.cloud.model}), which costs money, so it never starts by "
        "itself: run `hera-router bootstrap` to see the planned calls and dollars, then "
        "`hera-router bootstrap --yes` (or `--budget-usd N`)"
    )


# -- the stages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    """One profile run bootstrap makes: its name suffix, what it is for, and its stored config."""

    suffix: str
    purpose: str
    config: dict[str, Any]


def bootstrap_config(settings: Settings) -> dict[str, Any]:
    """The training profile's run config (what ``eval matrix`` compares to reuse a bootstrap)."""
    return bootstrap_stages(settings)[0].config


def bootstrap_stages(settings: Settings) -> list[Stage]:
    """The profile runs bootstrap makes, in order: training trees, URC's requests, calibration's."""
    estimators = settings.estimators
    start = estimators.profile_offset
    shape, rate = estimators.profile_shape, estimators.llm_sample_rate
    full = shape == FULL

    def config(n: int, offset: int, *, urc: bool = False) -> dict[str, Any]:
        if full:  # as before shapes existed: every run the same full trees
            return run_config(settings, n=n, offset=offset)
        # URC needs the two pure chains: its requests keep the LLM on its own chain, no decompositions.
        return run_config(
            settings,
            n=n,
            offset=offset,
            shape=shape,
            llm_sample_rate=0.0 if urc else rate,
            decompose=False if urc else None,
        )

    stages = [Stage("", "training trees", config(estimators.profile_requests, start))]
    if estimators.urc_requests:
        stages.append(
            Stage("-urc", "URC", config(estimators.urc_requests, start + estimators.profile_requests, urc=True))
        )
    if estimators.calibration_requests:
        offset = start + estimators.profile_requests + estimators.urc_requests
        stages.append(Stage("-calibration", "calibration", config(estimators.calibration_requests, offset)))
    return stages


# -- the plan ----------------------------------------------------------------------------------


@dataclass
class Usage:
    """Calls, tokens and dollars on one backend."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.usd += other.usd


@dataclass
class StagePlan:
    stage: Stage
    requests: int
    usage: dict[str, Usage]
    request_usd: dict[str, float]
    """Planned dollars per request key (what the spending limit predicts a request by)."""


@dataclass
class BootstrapPlan:
    """What a bootstrap with these settings will call, per stage and backend (module docstring)."""

    stages: list[StagePlan]
    sd_validation: dict[str, Usage]
    real: bool
    models: dict[str, str]

    def total(self, role: str) -> Usage:
        usage = Usage()
        for stage in self.stages:
            usage.add(stage.usage[role])
        usage.add(self.sd_validation[role])
        return usage

    @property
    def usd(self) -> float:
        return sum(self.total(role).usd for role in ROLES)

    def lines(self) -> list[str]:
        """The plan as the CLI prints it."""
        where = "the configured models" if self.real else "the simulated models"
        out = [f"bootstrap plan ({where}; calls counted on the simulated world, tokens as it counts them):"]
        for stage in self.stages:
            config = stage.stage.config
            shape = config.get("shape", FULL)
            detail = f"{shape}" + (
                f", LLM at {config['llm_sample_rate']:.0%} of All-SLM nodes" if shape != FULL else ""
            )
            calls = ", ".join(f"{role} {stage.usage[role].calls}" for role in ROLES)
            out.append(
                f"  {stage.stage.purpose}: {stage.requests} requests ({detail}, node budget {config['node_budget']}): "
                f"{calls} calls"
            )
        sd = self.sd_validation
        out.append(
            f"  SD validation (SSE test of decompositions): edge {sd['edge'].calls}, cloud {sd['cloud'].calls} calls"
        )
        for role in ROLES:
            usage = self.total(role)
            out.append(
                f"  {role} ({self.models[role]}): {usage.calls} calls, {usage.prompt_tokens} prompt + "
                f"{usage.completion_tokens} completion tokens, ${usage.usd:.2f}"
            )
        out.append(f"  estimated total: ${self.usd:.2f} (token prices; edge GPU time and energy not included)")
        return out


def _simulated(settings: Settings) -> Settings:
    """``settings`` with both backends on the simulator (the plan's stand-in for the real models)."""
    return settings.model_copy(
        update={
            "edge": settings.edge.model_copy(update={"backend": "sim"}),
            "cloud": settings.cloud.model_copy(update={"backend": "sim"}),
        }
    )


def _role(node: TreeNode) -> BackendRole:
    return "edge" if node.producing_model is Executor.SLM else "cloud"


def _node_usd(settings: Settings, node: TreeNode) -> float:
    from hera_router.backends.pricing import call_cost

    role = _role(node)
    model = settings.edge.model if role == "edge" else settings.cloud.model
    return call_cost(settings, model, node.tokens_in, node.tokens_out, 0.0, role).total


def plan_bootstrap(settings: Settings) -> BootstrapPlan:
    """Count what bootstrap will call, per stage and backend, on the simulated models (no real call)."""
    from hera_router.backends.registry import build_raw_backend
    from hera_router.training.profiling import build_tree

    simulated = _simulated(settings)
    backends = {Executor.SLM: build_raw_backend(simulated, "edge"), Executor.LLM: build_raw_backend(simulated, "cloud")}
    stages: list[StagePlan] = []
    training_trees: dict[str, list[TreeNode]] = {}
    for number, stage in enumerate(bootstrap_stages(settings)):
        config = stage.config
        usage: dict[str, Usage] = {role: Usage() for role in ROLES}
        per_request: dict[str, float] = {}
        items = items_for_run(settings, config)
        for item in items:
            tree = build_tree(
                item,
                backends,
                node_budget=int(config["node_budget"]),
                max_depth=int(config["max_depth"]),
                decompose=bool(config["decompose"]),
                shape=str(config.get("shape", FULL)),
                llm_sample_rate=float(config.get("llm_sample_rate", 1.0)),
            )
            if number == 0:
                training_trees[item.key] = tree
            per_request[item.key] = 0.0
            for node in tree:
                if node.kind not in (STEP, DECOMPOSITION):
                    continue
                cost = _node_usd(settings, node)
                role = usage[_role(node)]
                role.calls += 1
                role.prompt_tokens += node.tokens_in
                role.completion_tokens += node.tokens_out
                role.usd += cost
                per_request[item.key] += cost
        stages.append(StagePlan(stage, len(items), usage, per_request))
    return BootstrapPlan(
        stages,
        _sd_validation(settings, training_trees),
        uses_real_backends(settings),
        {
            "edge": f"{settings.edge.backend} {settings.edge.model}",
            "cloud": f"{settings.cloud.backend} {settings.cloud.model}",
        },
    )


def _sd_validation(settings: Settings, trees: Mapping[str, Sequence[TreeNode]]) -> dict[str, Usage]:
    """The SD validation's calls (``training/evaluation.py``'s SSE test), at most: per validation
    decomposition, one edge call to decompose (the prompted variant), then every part and the
    undecomposed subtask on both models (the test stops at the first failing part)."""
    from hera_router.agent.format import parse_decomposition
    from hera_router.training.labels import split_by_request

    usage: dict[str, Usage] = {role: Usage() for role in ROLES}
    if not settings.estimators.decompose:
        return usage
    _, validation = split_by_request(
        request_trees(trees), settings.estimators.validation_fraction, settings.estimators.split_seed
    )
    steps = [n for tree in trees.values() for n in tree if n.kind == STEP]
    prompt = round(sum(n.tokens_in for n in steps) / len(steps)) if steps else 0
    completion = min(SD_ORACLE_TOKENS, round(sum(n.tokens_out for n in steps) / len(steps)) if steps else 0)
    for tree in validation:
        for node in tree.nodes:
            if node.kind != DECOMPOSITION:
                continue
            parts = len(parse_decomposition(node.text))
            if settings.estimators.sd_variant == "prompted":
                _charge(settings, usage, "edge", 1, node.tokens_in, node.tokens_out)
            for role in ROLES:
                _charge(settings, usage, role, parts + 1, prompt, completion)
    return usage


def _charge(
    settings: Settings, usage: dict[str, Usage], role: BackendRole, calls: int, prompt: int, completion: int
) -> None:
    from hera_router.backends.pricing import call_cost

    model = settings.edge.model if role == "edge" else settings.cloud.model
    usage[role].calls += calls
    usage[role].prompt_tokens += calls * prompt
    usage[role].completion_tokens += calls * completion
    usage[role].usd += calls * call_cost(settings, model, prompt, completion, 0.0, role).total


# -- the spending limit ------------------------------------------------------------------------


class SpendingLimit:
    """Refuses the next request once its predicted cost would take the spend past the limit.

    A request's cost is predicted as its planned cost times the ratio of what the calls so far
    actually cost to what they were planned to cost (1 before any call). What the later steps
    will spend (the SD validation) is held back from the start.
    """

    def __init__(self, limit_usd: float, plan: BootstrapPlan) -> None:
        self.limit_usd = limit_usd
        self.reserved_usd = sum(plan.sd_validation[role].usd for role in ROLES)
        self.planned = {key: usd for stage in plan.stages for key, usd in stage.request_usd.items()}
        self.spent_usd = 0.0
        self.planned_so_far = 0.0
        self.stopped_at: str | None = None

    def predicted(self, item: ProfileItem) -> float:
        planned = self.planned.get(item.key, 0.0)
        if self.planned_so_far > 0:
            return planned * self.spent_usd / self.planned_so_far
        return planned

    def allow(self, item: ProfileItem) -> bool:
        if self.spent_usd + self.predicted(item) + self.reserved_usd > self.limit_usd:
            self.stopped_at = item.key
            return False
        return True

    def spent(self, item: ProfileItem, tree: Sequence[TreeNode]) -> None:
        self.spent_usd += sum(node.cost_usd for node in tree)
        self.planned_so_far += self.planned.get(item.key, 0.0)


# -- bootstrap ---------------------------------------------------------------------------------


@dataclass(slots=True)
class BootstrapResult:
    run_id: uuid.UUID
    requests: int
    trained: list[TrainResult] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    hybridllm_path: Path | None = None
    calls: dict[str, int] = field(default_factory=dict)
    """Profiling calls made, per backend (nodes written: steps and decompositions)."""
    spent_usd: float = 0.0
    """What the profiled calls cost (the nodes' costs)."""
    stopped: str | None = None
    """Why bootstrap stopped short (the spending limit), or None."""


def _profile_stages(
    runtime: Runtime,
    name: str,
    limit: SpendingLimit | None,
    on_request: Callable[[int, int], None] | None,
    say: Callable[[str], None],
) -> tuple[dict[str, uuid.UUID], dict[str, int], str | None]:
    """Profile every stage's requests in turn until the spending limit stops them: the runs and
    request counts by stage suffix, and why profiling stopped (None when it did not)."""
    settings = runtime.settings
    source = "real" if uses_real_backends(settings) else "sim"
    runs: dict[str, uuid.UUID] = {}
    profiled: dict[str, int] = {}
    stopped: str | None = None
    for number, stage in enumerate(bootstrap_stages(settings)):
        if stopped is not None:
            say(f"not profiling the {stage.purpose} requests: {stopped}")
            continue
        if number:
            say(f"profiling {stage.config['n']} more requests for {stage.purpose}")
        run_id = create_run(runtime.sessions, f"{name}{stage.suffix}", source, stage.config)
        runs[stage.suffix] = run_id
        count = profile_run(
            settings, runtime.sessions, run_id, on_request=on_request if number == 0 else None, guard=limit
        )
        profiled[stage.suffix] = count
        if limit is not None and limit.stopped_at is not None:
            stopped = (
                f"the spending limit of ${limit.limit_usd:.2f} was reached after {count} of "
                f"{stage.config['n']} {stage.purpose} requests (${limit.spent_usd:.2f} spent, "
                f"${limit.reserved_usd:.2f} held back for the SD validation)"
            )
            say(stopped)
    return runs, profiled, stopped


def bootstrap(
    runtime: Runtime,
    *,
    name: str = "bootstrap",
    on_request: Callable[[int, int], None] | None = None,
    progress: Callable[[str], None] | None = None,
    promote: bool = True,
    budget_usd: float | None = None,
    plan: BootstrapPlan | None = None,
) -> BootstrapResult:
    """Profile, train and promote every estimator, calibrate, fit HybridLLM (module docstring).

    ``budget_usd`` (default ``estimators.bootstrap_budget_usd``) is the spending limit; the plan
    it predicts by is made here unless given.
    """
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope

    settings = runtime.settings
    say = progress or (lambda _: None)
    estimators = settings.estimators
    budget_usd = estimators.bootstrap_budget_usd if budget_usd is None else budget_usd
    limit = None
    if budget_usd is not None:
        limit = SpendingLimit(budget_usd, plan or plan_bootstrap(settings))
    runs, profiled, stopped = _profile_stages(runtime, name, limit, on_request, say)
    run_id = runs[""]
    result = BootstrapResult(run_id, profiled[""], stopped=stopped)
    _account(runtime, list(runs.values()), result)
    if stopped is not None and profiled[""] < MIN_TRAIN_REQUESTS:
        result.stopped = f"{stopped}; {profiled['']} training requests are too few to train on, nothing was trained"
        say(result.stopped)
        return result
    trees = request_trees(load_trees(runtime.sessions, run_id))
    urc_trees = request_trees(load_trees(runtime.sessions, runs["-urc"])) if "-urc" in runs else []
    # In the sampled shape URC's requests carry divergence labels (the SLM's alternative along the
    # All-LLM chain); in the full shape they are URC's alone, as before.
    extra = {"urc"} | ({"divergence"} if estimators.profile_shape != FULL else set())
    for estimator in ESTIMATOR_NAMES:
        data = [*trees, *urc_trees] if estimator in extra else trees
        trained = train_estimator(runtime, estimator, run_id, trees=data, progress=progress)
        if trained is None:  # claimed by a concurrent run of the same name and second: not ours
            continue
        result.trained.append(trained)
        if promote:
            with session_scope(runtime.sessions) as session:
                EstimatorVersionRepository(session).promote(estimator, trained.version)
    if promote:
        from hera_router.training.calibration import calibrate

        search_run = runs.get("-calibration")
        if search_run is not None and profiled["-calibration"] < MIN_CALIBRATION_REQUESTS:
            say(f"calibration profile cut at {profiled['-calibration']} requests: searching on the validation halves")
            search_run = None
        result.calibration = calibrate(runtime, run_id, search_run=search_run, progress=progress)
    result.hybridllm_path = fit_default_hybridllm(runtime, run_id, progress)
    from hera_router.estimators.similarity import prepare_router_encoder

    prepare_router_encoder(settings, progress)
    return result


def _account(runtime: Runtime, runs: Sequence[uuid.UUID], result: BootstrapResult) -> None:
    """The profiling calls and spend of ``runs`` (from their stored nodes), into ``result``."""
    calls: dict[str, int] = dict.fromkeys(ROLES, 0)
    spent = 0.0
    for run in runs:
        for tree in load_trees(runtime.sessions, run).values():
            for node in tree:
                if node.kind in (STEP, DECOMPOSITION):
                    calls[_role(node)] += 1
                    spent += node.cost_usd
    result.calls, result.spent_usd = calls, spent


def fit_default_hybridllm(runtime: Runtime, run_id: uuid.UUID, progress: Callable[[str], None] | None) -> Path | None:
    """HybridLLM's router fitted on the bootstrap profile, where ``run -p hybridllm`` looks for it."""
    from hera_router.training.baselines import default_paths, fit_hybridllm
    from hera_router.training.replay import load_profile

    path = default_paths(runtime.settings).hybridllm
    try:
        fitted = fit_hybridllm(load_profile(runtime.settings, runtime.sessions, run_id), path)
    except ValueError as exc:  # too few profiled subtasks: say so, HERA does not need it
        if progress is not None:
            progress(f"hybridllm: not fitted ({exc})")
        return None
    if progress is not None:
        threshold = fitted.router.threshold
        progress(f"hybridllm: router fitted on {fitted.train_samples} subtasks, threshold {threshold:.3f}")
    return path
