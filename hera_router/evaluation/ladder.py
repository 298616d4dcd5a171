"""The N-model ladder on the simulated world: HERA's escalation over cheapest-first
rungs against two-model HERA, each model alone, every fixed pair, Random over the ladder and a
per-step HybridLLM-style router over the ladder, on the full cost model and the paper's.

SIMULATED: the models are the simulator's tiers (``presets.toml``: tiny, mid, cheap-cloud,
cloud) and the prices are the stated assumptions of :data:`DEFAULT_TIERS`, not measurements.

How a world is evaluated:

1. **Profiling** (``profile_requests`` requests, disjoint from the evaluation set): each request's
   chain is run by the top rung; at every step, every rung answers the same prompt once. That is
   N calls per step (linear in the number of models; ``routing/ladder.py`` says why trees are not
   needed) and gives, per step, each rung's confidence and whether its result was right.
2. **Fitting**: per pair (k, l) a confidence threshold (:func:`fit_pair_thresholds`) at tolerance
   δ: at most δ of the accepted rung-k steps are ones where rung l would have been right and rung k
   was not. Per rung, a HybridLLM-style classifier (hashed n-grams + position,
   ``routing/hybridllm.py``) predicts P(rung k's step is right) from the subtask text only.
3. **Evaluation** (``requests`` requests): every policy runs every request in the agent loop;
   each call is priced by ``backends.pricing.call_cost`` (tokens, GPU-seconds, energy, transfer)
   and, the paper's way, by cloud token dollars only. Sweeps of δ and of the HybridLLM quality bar
   trace each policy's cost/accuracy curve.

Two-model HERA here is the verify cascade on (mid, cloud): the stage that carries HERA's gain in
this simulator (docs/evaluation.md: SLE/CD/SD/URC add nothing measurable on top of it), fitted
the same way as the ladder. It is not the estimator-driven ``hera`` policy of the pipeline.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any, Literal

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.agent.scoring import score
from hera_router.backends.pricing import bytes_sent
from hera_router.config import BackendSettings, CostSettings, ModelTier, Settings, load_settings
from hera_router.estimators.ladder_pair import (
    LadderStarts,
    PairHeads,
    TextEncoder,
    encoder_named,
)
from hera_router.evaluation.render import table
from hera_router.routing import steps
from hera_router.routing.base import Verdict
from hera_router.routing.hybridllm import LabelledSubtask, SubtaskClassifier
from hera_router.routing.ladder import Ladder
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import TaskRecord, generate_tasks
from hera_router.simulator.presets import load_behaviour
from hera_router.simulator.world import World
from hera_router.training.ladder import (
    PARAMS,
    ProfiledStep,
    Rung,
    cost_ordered,
    fit_pair_thresholds,
    fit_start_heads,
    fit_starts,
    price,
    profile,
)

_HOUR = 3600.0


def _tier(name: str, role: Literal["edge", "cloud"], model: str, **prices: float) -> ModelTier:
    return ModelTier(name=name, role=role, backend=BackendSettings(backend="sim", model=model), **prices)


DEFAULT_TIERS: tuple[ModelTier, ...] = (
    _tier("tiny", "edge", "sim-tiny", gpu_usd_per_second=0.35 / _HOUR, power_w=70.0),
    _tier("mid", "edge", "sim-slm", gpu_usd_per_second=0.80 / _HOUR, power_w=150.0),
    _tier("cheap-cloud", "cloud", "sim-cheap", input_per_mtok=0.15, output_per_mtok=0.60),
    _tier("cloud", "cloud", "sim-llm", input_per_mtok=2.50, output_per_mtok=10.00),
)
"""Assumed prices: a T4-class box at $0.35/h and 70 W for the tiny model, an L4-class one at $0.80/h
and 150 W for the mid one; gpt-4o-mini's and gpt-4o's list prices for the two cloud models."""
DEFAULT_COSTS = CostSettings(energy_usd_per_kwh=0.15, transfer_usd_per_gb=0.09)
TOLERANCES: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05)
"""Per-step tolerances δ swept (a request of ~6 steps compounds them)."""
REFERENCE = "δ=0.01"
HYBRID_BARS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
OWNED_EDGE: tuple[ModelTier, ...] = tuple(
    tier.model_copy(update={"gpu_usd_per_second": 0.0}) if tier.role == "edge" else tier for tier in DEFAULT_TIERS
)
"""The second price scenario: edge boxes already paid for, so an edge call costs its energy only."""
SCENARIOS: dict[str, tuple[ModelTier, ...]] = {"rented-edge": DEFAULT_TIERS, "owned-edge": OWNED_EDGE}
TWO_MODEL = ("mid", "cloud")
DEFAULT_START_ENCODER = "hashed-ngrams-512"
"""The pair estimators' text features in the evaluation: hashed n-grams, because MiniLM at batch 1
on every step of every policy run costs minutes per world on this CPU for an out-of-fold AUC no
better on the simulator's steps (``--encoder all-minilm-l6-v2`` runs it)."""
ESTIMATED = "HERA ladder + pair estimators"
"""The ladder whose steps start on the rung the per-pair estimators judge sufficient."""


@dataclass
class Outcome:
    """One policy's result on one request."""

    score: float
    full_cost: float
    paper_cost: float
    calls: int
    escalations: int
    steps: int


@dataclass
class PolicyResult:
    """A policy (at one setting) over the evaluation set; costs are per request."""

    policy: str
    family: str
    setting: str
    accuracy: float
    full_cost: float
    paper_cost: float
    calls_per_request: float
    escalations_per_request: float
    start_share: dict[str, float] = field(default_factory=dict)
    """Policies with a start decision: the share of steps that started on each rung."""

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorldReport:
    preset: str
    seed: int
    requests: int
    profile_requests: int
    profiled_calls: int
    thresholds: dict[str, dict[str, float]]
    results: list[PolicyResult] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    starts: dict[str, Any] = field(default_factory=dict)
    """The pair estimators' artifact fitted at the reference δ (``LadderStarts.to_json``)."""
    pair_heads: list[dict[str, Any]] = field(default_factory=list)
    """Per adjacent pair: its head's fit (base rate of "needed", out-of-fold AUC, C)."""


# -- the agent loop over rungs ------------------------------------------------------------------


Start = Callable[[int, str], int]
"""(step, subtask) → the rung a step starts on."""


def run_request(
    task: TaskRecord,
    rungs: Sequence[Rung],
    settings: Settings,
    *,
    start: Start,
    ladder: Ladder | None,
    max_steps: int = 15,
) -> Outcome:
    """Run ``task`` to its final answer: each step starts on ``start``'s rung and, with a
    ``ladder``, climbs one rung at a time while the judge rejects the result; the request ends, or
    goes on, as the pipeline's (``routing/steps.py``; a plan's text is followed as a subtask)."""
    history: list[tuple[str, str]] = []
    current, step = task.request, 0
    full = paper = 0.0
    calls = escalations = 0
    while True:
        rung = start(step, current)
        messages = render_step_messages(task.request, history, current, step)
        while True:
            generation = rungs[rung].backend.generate(messages, PARAMS)
            calls += 1
            sent = bytes_sent(messages) if rungs[rung].tier.role == "cloud" else 0
            cost, cloud = price(settings, rungs[rung], generation, sent)
            full, paper = full + cost, paper + cloud
            confidence = float(generation.extra.get("mean_logprob", "nan"))
            here = steps.Rung(rung, len(rungs), edge=rungs[rung].tier.role == "edge")
            climb = None if ladder is None else steps.after_verdict(_judged(ladder, rung, confidence), here)
            if climb is None:
                break
            rung, escalations = climb.to, escalations + 1
        parsed = parse_step(generation.text)
        history.append((current, parsed.result))
        end = steps.StepEnd(step, parsed.result, parsed.final_answer, parsed.next_subtask)
        move = steps.after_step(end, max_steps, plans=False)
        if isinstance(move, steps.Next):
            current, step = move.text, move.seq
            continue
        quality = score(task.metric, move.answer, task.gold) if isinstance(move, steps.Finish) else 0.0
        return Outcome(quality, full, paper, calls, escalations, len(history))


def _judged(ladder: Ladder, rung: int, confidence: float) -> Verdict:
    """The ladder's judge as a verdict: keep rung ``rung``'s result unless its confidence is below
    the pair's threshold (a result without logprobs, NaN, is never kept below the top)."""
    threshold = ladder.thresholds[rung] if rung < ladder.top else float("-inf")
    accept = ladder.escalate(rung, confidence) is None
    return Verdict(accept=accept, score=confidence, threshold=threshold, policy="ladder")


# -- profiling and fitting ----------------------------------------------------------------------


def fit_classifiers(steps: Sequence[ProfiledStep], rungs: int) -> list[SubtaskClassifier]:
    """Per rung, P(its step is right) from the subtask text and position (HybridLLM-style)."""
    return [
        SubtaskClassifier.fit([LabelledSubtask(s.text, s.seq, float(s.correct[k])) for s in steps])
        for k in range(rungs)
    ]


# -- a world ------------------------------------------------------------------------------------


def _policy_result(policy: str, family: str, setting: str, outcomes: Sequence[Outcome]) -> PolicyResult:
    n = len(outcomes)
    return PolicyResult(
        policy=policy,
        family=family,
        setting=setting,
        accuracy=sum(o.score for o in outcomes) / n,
        full_cost=sum(o.full_cost for o in outcomes) / n,
        paper_cost=sum(o.paper_cost for o in outcomes) / n,
        calls_per_request=sum(o.calls for o in outcomes) / n,
        escalations_per_request=sum(o.escalations for o in outcomes) / n,
    )


def _seeded_random(seed: int, task_id: str, top: int) -> Start:
    def start(step: int, _text: str) -> int:
        return random.Random(f"{seed}:{task_id}:{step}").randint(0, top)

    return start


def _starting(fitted: LadderStarts, encoder: TextEncoder, counts: list[int]) -> Callable[[TaskRecord], Start]:
    def for_task(_task: TaskRecord) -> Start:
        def start(step: int, text: str) -> int:
            rung, _ = fitted.start(encoder.embed_many([text])[0], step)
            counts[rung] += 1
            return rung

        return start

    return for_task


def _rungs(preset: str, seed: int, tiers: Sequence[ModelTier]) -> list[Rung]:
    behaviour = load_behaviour(preset)
    return [
        Rung(tier, SimBackend(behaviour.tier(tier.name).base, tier.backend.model, seed, preset, tier=tier.name))
        for tier in tiers
    ]


def _hybrid_start(classifiers: Sequence[SubtaskClassifier], bar: float) -> Callable[[TaskRecord], Start]:
    """HybridLLM over the ladder: a step starts on the cheapest rung whose classifier clears ``bar``."""
    top = len(classifiers) - 1

    def for_task(_task: TaskRecord) -> Start:
        def start(step: int, text: str) -> int:
            return next((k for k, c in enumerate(classifiers) if c.score(text, step) >= bar), top)

        return start

    return for_task


def evaluate_world(
    preset: str,
    seed: int,
    *,
    requests: int = 100,
    profile_requests: int = 60,
    tiers: Sequence[ModelTier] = DEFAULT_TIERS,
    costs: CostSettings = DEFAULT_COSTS,
    family: str = "mixed",
    encoder: str = DEFAULT_START_ENCODER,
) -> WorldReport:
    """Profile, fit and evaluate every policy on one simulated world (a preset and a seed).
    ``encoder``: what embeds a step's text for the pair estimators (``encoder_named``)."""
    settings = load_settings(models=[tier.model_dump() for tier in tiers], costs=costs.model_dump())
    behaviour = load_behaviour(preset)
    rungs = _rungs(preset, seed, tiers)
    names = [tier.name for tier in tiers]
    tasks = generate_tasks(World(seed, behaviour.world), family, profile_requests + requests)
    profiled, profiled_calls, per_call = profile(tasks[:profile_requests], rungs, settings)
    by_cost = cost_ordered(profiled, per_call)
    evaluation = tasks[profile_requests:]
    report = WorldReport(preset, seed, requests, profile_requests, profiled_calls, thresholds={})
    top = len(rungs) - 1
    encode = encoder_named(encoder, cache_size=1_000_000)  # a run's texts repeat across policies and scenarios
    heads = fit_start_heads(profiled, encode)
    report.pair_heads = [
        {"pair": f"{a}>{b}", **info} for (a, b), info in zip(pairwise(names), heads.infos, strict=True)
    ]

    def run(
        policy_rungs: Sequence[int],
        setting: str,
        policy: str,
        kind: str,
        ladder: Ladder | None,
        start: Callable[[TaskRecord], Start] | None = None,
    ) -> PolicyResult:
        chosen = [rungs[k] for k in policy_rungs]
        outcomes = [
            run_request(task, chosen, settings, start=(start(task) if start else (lambda _s, _t: 0)), ladder=ladder)
            for task in evaluation
        ]
        result = _policy_result(policy, kind, setting, outcomes)
        report.results.append(result)
        return result

    for k, name in enumerate(names):
        run([k], "", f"{name} alone", "alone", None)
    for tolerance in TOLERANCES:
        _ladder_runs(
            run,
            report,
            tolerance=tolerance,
            profiled=profiled,
            heads=heads,
            names=names,
            by_cost=by_cost,
            encode=encode,
            encoder=encoder,
            profile_requests=profile_requests,
        )
    run(
        range(len(rungs)),
        "",
        "Random over the ladder",
        "random",
        None,
        start=lambda task: _seeded_random(seed, task.id, top),
    )
    classifiers = fit_classifiers(profiled, len(rungs))
    for bar in HYBRID_BARS:
        hybrid = _hybrid_start(classifiers, bar)
        run(range(len(rungs)), f"q={bar}", "HybridLLM over the ladder", "hybrid", None, start=hybrid)
    report.headline = headline(report.results)
    report.headline["cost_order"] = " > ".join(names[k] for k in by_cost)
    report.headline["mean_full_cost_per_call"] = dict(zip(names, per_call, strict=True))
    return report


def _ladder_runs(
    run: Callable[..., PolicyResult],
    report: WorldReport,
    *,
    tolerance: float,
    profiled: Sequence[ProfiledStep],
    heads: PairHeads,
    names: Sequence[str],
    by_cost: list[int],
    encode: TextEncoder,
    encoder: str,
    profile_requests: int,
) -> None:
    """At one tolerance δ: the ladder with fitted pair thresholds, with its start estimators, in cost
    order when that differs, and every fixed pair of rungs."""
    preset, seed, top = report.preset, report.seed, len(names) - 1
    rungs = range(len(names))
    ladder = Ladder(tuple(names), tuple(fit_pair_thresholds(profiled, k, k + 1, tolerance) for k in range(top)))
    pair_names = [f"{a}>{b}" for a, b in pairwise(names)]
    report.thresholds[f"ladder δ={tolerance}"] = dict(zip(pair_names, ladder.thresholds, strict=True))
    run(range(len(rungs)), f"δ={tolerance}", "HERA ladder", "ladder", ladder)
    fitted = fit_starts(
        heads,
        names,
        profiled,
        ladder.thresholds,
        encoder,
        tolerance=tolerance,
        preset=preset,
        seed=seed,
        profile_requests=profile_requests,
    )
    counts = [0] * len(rungs)
    started = run(
        range(len(rungs)), f"δ={tolerance}", ESTIMATED, "ladder", ladder, start=_starting(fitted, encode, counts)
    )
    started.start_share = {name: count / max(sum(counts), 1) for name, count in zip(names, counts, strict=True)}
    if f"δ={tolerance}" == REFERENCE:
        report.starts = fitted.to_json()
    if len(by_cost) > 1 and by_cost != list(range(len(rungs))):
        ordered = Ladder(
            tuple(names[k] for k in by_cost),
            tuple(fit_pair_thresholds(profiled, a, b, tolerance) for a, b in pairwise(by_cost)),
        )
        run(by_cost, f"δ={tolerance}", "HERA ladder, cost-ordered", "ladder", ordered)
    for low, high in combinations(range(len(rungs)), 2):
        pair = Ladder((names[low], names[high]), (fit_pair_thresholds(profiled, low, high, tolerance),))
        label = "two-model HERA" if (names[low], names[high]) == TWO_MODEL else f"pair {names[low]}+{names[high]}"
        run([low, high], f"δ={tolerance}", label, "pair", pair)


# -- what the results say -----------------------------------------------------------------------


def _frontier(points: Sequence[PolicyResult]) -> list[PolicyResult]:
    """The cost/accuracy Pareto frontier: no other point is cheaper and at least as accurate."""
    ordered = sorted(points, key=lambda r: (r.full_cost, -r.accuracy))
    frontier: list[PolicyResult] = []
    for point in ordered:
        if not frontier or point.accuracy > frontier[-1].accuracy:
            frontier.append(point)
    return frontier


def _cheapest_at(points: Sequence[PolicyResult], accuracy: float) -> PolicyResult | None:
    reaching = [p for p in points if p.accuracy >= accuracy - 1e-9]
    return min(reaching, key=lambda p: p.full_cost) if reaching else None


def _best_at_cost(points: Sequence[PolicyResult], cost: float) -> PolicyResult | None:
    within = [p for p in points if p.full_cost <= cost + 1e-12]
    return max(within, key=lambda p: p.accuracy) if within else None


def _matched(point: PolicyResult, ladder: Sequence[PolicyResult]) -> bool:
    """Some ladder point is at most as costly and at least as accurate."""
    return any(r.full_cost <= point.full_cost + 1e-12 and r.accuracy >= point.accuracy - 1e-9 for r in ladder)


def headline(results: Sequence[PolicyResult], reference_setting: str = REFERENCE) -> dict[str, Any]:
    """The issue's targets on one world, for each ladder variant (the configured order, and the
    cost-ordered one when it differs): against two-model HERA at the reference δ (the same accuracy
    for less full cost, or more accuracy for the same cost), and against the frontier of the best
    fixed pair (the most accurate pair at the reference δ, the cheaper one on a tie)."""
    two = next(r for r in results if r.policy == "two-model HERA" and r.setting == reference_setting)
    pairs = [r for r in results if r.family == "pair"]
    best = max((p for p in pairs if p.setting == reference_setting), key=lambda p: (p.accuracy, -p.full_cost))
    frontier = _frontier([p for p in pairs if p.policy == best.policy])
    out: dict[str, Any] = {"two_model": asdict(two), "best_fixed_pair": best.policy}
    for variant in sorted({r.policy for r in results if r.family == "ladder"}):
        ladder = [r for r in results if r.policy == variant]
        cheaper = _cheapest_at(ladder, two.accuracy)
        better = _best_at_cost(ladder, two.full_cost)
        matched = sum(1 for point in frontier if _matched(point, ladder))
        reduction = 1 - cheaper.full_cost / two.full_cost if cheaper is not None and two.full_cost else None
        gain = better.accuracy - two.accuracy if better is not None else None
        beaten_by = sorted({point.policy for point in _frontier(pairs) if not _matched(point, ladder)})
        out[variant] = {
            "pairs_with_points_above_it": beaten_by,
            "full_cost_reduction_at_same_accuracy": reduction,
            "at": cheaper.setting if cheaper else None,
            "accuracy_gain_at_same_cost": gain,
            "best_pair_frontier_points_matched": f"{matched}/{len(frontier)}",
            "meets_cost_target": bool((reduction is not None and reduction >= 0.2) or (gain is not None and gain > 0)),
        }
    return out


def describe(variant: dict[str, Any]) -> str:
    """One ladder variant's headline as a sentence."""
    reduction, gain, at = (
        variant["full_cost_reduction_at_same_accuracy"],
        variant["accuracy_gain_at_same_cost"],
        variant["at"],
    )
    reached = "not reached" if reduction is None else f"{reduction:.0%} lower ({at})"
    shown_gain = "n/a" if gain is None else f"{gain:+.3f}"
    return (
        f"full cost at two-model HERA's accuracy {reached}; accuracy at its cost {shown_gain}; best pair's "
        f"frontier points matched {variant['best_pair_frontier_points_matched']}; pairs on the overall pair "
        f"frontier with a point above it: {', '.join(variant['pairs_with_points_above_it']) or 'none'}; "
        f"target met: {variant['meets_cost_target']}"
    )


def write_report(reports: Sequence[WorldReport], folder: Path, note: str = "") -> Path:
    """``ladder.json``, ``ladder.md`` and one Pareto PNG per world under ``folder``; ``note``
    (how the run was made) goes under the title."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ladder.json").write_text(json.dumps([asdict(r) for r in reports], indent=2, default=str) + "\n")
    lines = [
        "# The N-model ladder — SIMULATED",
        "",
        "Simulated models (presets.toml tiers) and assumed prices (evaluation/ladder.py DEFAULT_TIERS); "
        "costs are USD per request. `full` is the full cost model (tokens, GPU-seconds, energy, transfer), "
        "`paper` the paper's (cloud token dollars only).",
        "",
        *([note, ""] if note else []),
        *summary(reports),
        "",
    ]
    for report in reports:
        lines += [
            f"## {report.preset} / seed {report.seed} (SIMULATED)",
            "",
            f"{report.requests} requests evaluated, {report.profile_requests} profiled "
            f"({report.profiled_calls} profiling calls: every rung once per step of the top rung's chain).",
            "",
            results_table(report.results),
        ]
        h = report.headline
        lines += [
            "",
            f"Cost order (measured full cost per call, dominated rungs dropped): {h['cost_order']}; "
            f"best fixed pair: {h['best_fixed_pair']}; two-model HERA at {REFERENCE}: accuracy "
            f"{h['two_model']['accuracy']:.3f}, full cost {h['two_model']['full_cost']:.6f}.",
            "",
        ]
        for variant, v in h.items():
            if isinstance(v, dict) and "meets_cost_target" in v:
                lines.append(f"- {variant}: {describe(v)}")
        lines += ["", *_describe_starts(report), ""]
        slug = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in report.preset).strip("-")
        _plot(report, folder / f"ladder-{slug}-seed{report.seed}.png")
    path = folder / "ladder.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def results_table(results: Sequence[PolicyResult]) -> str:
    headers = ["policy", "setting", "accuracy", "full cost", "paper cost", "calls/request", "escalations/request"]
    rows = []
    for r in results:
        costs = [f"{r.full_cost:.6f}", f"{r.paper_cost:.6f}"]
        calls = [f"{r.calls_per_request:.2f}", f"{r.escalations_per_request:.2f}"]
        rows.append([r.policy, r.setting, f"{r.accuracy:.3f}", *costs, *calls])
    return table(headers, rows, right=range(2, 7))


def summary(reports: Sequence[WorldReport]) -> list[str]:
    """One row per world and ladder variant: the issue's two targets."""
    lines = [
        "## Summary (SIMULATED)",
        "",
        f"Two-model HERA at {REFERENCE}; each ladder variant's full cost at that accuracy, its accuracy at that "
        "cost, and how many points of the best fixed pair's δ-curve some ladder point matches or dominates.",
        "",
        "| world | two-model HERA (acc, full cost) | ladder variant | cost at its accuracy | accuracy at its "
        "cost | best pair | its frontier matched | target met | starts (δ=0.01) |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for report in reports:
        h = report.headline
        two = h["two_model"]
        shares = next((r.start_share for r in report.results if r.policy == ESTIMATED and r.setting == REFERENCE), {})
        for variant, v in h.items():
            if not (isinstance(v, dict) and "meets_cost_target" in v):
                continue
            reduction, gain = v["full_cost_reduction_at_same_accuracy"], v["accuracy_gain_at_same_cost"]
            starts = ", ".join(f"{n} {x:.0%}" for n, x in shares.items() if x) if variant == ESTIMATED else ""
            lines.append(
                f"| {report.preset} / seed {report.seed} | {two['accuracy']:.3f}, {two['full_cost']:.6f} | {variant} | "
                + _reduction(reduction, v["at"])
                + f" | {'n/a' if gain is None else f'{gain:+.3f}'} | {h['best_fixed_pair']} | "
                f"{v['best_pair_frontier_points_matched']} | {'yes' if v['meets_cost_target'] else 'no'} | {starts} |"
            )
    return lines


def _reduction(reduction: float | None, at: str | None) -> str:
    if reduction is None:
        return "not reached"
    return f"{reduction:.0%} lower ({at})" if reduction >= 0 else f"{-reduction:.0%} higher ({at})"


def _describe_starts(report: WorldReport) -> list[str]:
    """What the pair estimators learned and where the ladder with them started its steps."""
    if not report.pair_heads:
        return []
    heads = "; ".join(
        f"{h['pair']}: needed on {h['base_rate']:.1%} of profiled steps, out-of-fold AUC "
        + ("n/a (constant)" if h.get("oof_auc") is None else f"{h['oof_auc']:.2f}")
        for h in report.pair_heads
    )
    lines = [f"Pair estimators (P(next rung needed) from the step's text and position): {heads}."]
    for r in report.results:
        if r.policy == ESTIMATED and r.setting == REFERENCE:
            shares = ", ".join(f"{name} {share:.0%}" for name, share in r.start_share.items())
            lines.append(f"Start rungs of the {ESTIMATED} at {REFERENCE} (evaluation steps): {shares}.")
    rules = report.starts.get("pairs", []) if report.starts else []
    if rules:
        shown = ", ".join(
            f"{p}: "
            + (
                "never skip"
                if r["rule"]["base"] is None
                else f"skip at P >= {r['rule']['base']:.3f} - {r['rule']['step']} · min(seq, {r['rule']['cap']})"
            )
            for p, r in zip((h["pair"] for h in report.pair_heads), rules, strict=True)
        )
        lines.append(f"Fitted start thresholds at {REFERENCE}: {shown}.")
    return lines


def _plot(report: WorldReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    curves: dict[str, list[PolicyResult]] = {}
    for r in report.results:
        curves.setdefault(r.policy, []).append(r)
    for name, unsorted in curves.items():
        points = sorted(unsorted, key=lambda p: p.full_cost)
        emphasis = name.startswith("HERA ladder") or name == "two-model HERA"
        style = "-o" if len(points) > 1 else "s"
        axes.plot(
            [p.full_cost for p in points],
            [p.accuracy for p in points],
            style,
            label=name,
            linewidth=2.5 if emphasis else 0.8,
            markersize=5 if emphasis else 3,
            alpha=1.0 if emphasis else 0.6,
        )
    axes.set_xscale("log")
    axes.set_xlabel("full cost per request (USD, log)")
    axes.set_ylabel("accuracy")
    axes.set_title(f"SIMULATED: {report.preset} / seed {report.seed}")
    axes.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
