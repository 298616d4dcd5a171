"""The HERA policy (the HERA paper, §4, Algorithm 1): URC → SSE → SLE → CD → SD → LLM.

One call decides the current step (and, for URC/SLE/CD, how many steps after it run on the SLM
without re-routing). Every threshold is a :class:`~hera_router.config.RoutingSettings` field
(``HERA_ROUTING__*``); the stages run in the paper's order and the first that passes decides.

Stages, with the conventions this implementation chose where the paper is silent or ambiguous:

* **κ (position-aware threshold).** κ = ``kappa_base`` + ``kappa_step`` · min(ID, ``kappa_cap``),
  i.e. 0.6 + 0.02·min(ID, 5). ID = ``seq`` + ``id_origin``; ``seq`` is 0 for the root request.
  Default ``id_origin = 1``: the root request is subtask 1 (κ 0.62 → 0.70 from the fifth
  subtask on), matching the paper's figures, which number subtasks from 1. ``id_origin = 0``
  gives κ 0.60 → 0.70. κ is rounded to 10 decimals so that 0.6 + 0.02·5 is exactly 0.7. With
  ``position_aware_kappa`` off (ablation "fixed κ") every step uses ``kappa_fixed`` (0.7, the
  paper's single SBERT threshold). The same κ(ID of the current step) is used by SSE, SLE, every
  CD pair and every SD part, as the paper says. Every similarity test is strict: sim > κ.
* **κ for graphs (beyond the paper).** A node of a plan with dependencies runs as a
  request of its own, so by default (``graph_kappa = "position"``) a step's ID is its place in
  its node's chain: the prompt it is executed with carries that node's history only, which is
  what the per-step error grows with. ``graph_kappa = "depth"`` uses ID = ``depth_steps`` +
  ``seq``, where ``depth_steps`` counts the model steps on the longest path of results flowing
  into the node (the planning step, then every step of the nodes it needs, transitively): the
  reading of "position" as "how much earlier work this step's output rests on", which makes the
  final combining node, whose answer is the request's, the strictest. On one small world the two
  tie (docs/graphs.md), so ``position`` stays the default; chains are unaffected.
* **URC.** Score of the request text; > ``tau_req`` (0.7) → the SLM runs the rest of the request:
  span = ``max_steps`` − seq. It is evaluated at every decision (it depends on the request only),
  so a request that passed keeps going to the SLM even after an edge failure made the pipeline
  route a step again; scores are cached per (URC version, request), so that costs one encoder
  call per request.
* **SSE.** cos(SP_SLM(cur), SP_LLM(cur)) > κ, the predicted *next* subtasks → this step on the SLM.
* **SLE.** d = DP(cur, seq); None (∞) fails. SP_SLM is rolled L steps from cur and its L-th
  prediction compared with SP_LLM's first. ``sle_lookahead = "d+1"`` (default): L = d + 1, the
  reading consistent with Fig. 5 (L1 of the LLM chain is matched by S2 of the SLM chain, d = 1:
  one *extra* SLM step, so the 2nd SLM prediction is compared) and with the v1 text;
  ``"d"``: L = d, the literal "(i+d)-th subtask" of the EuroSys text. L is at least 1 (with "d"
  and d = 0 the test is the SSE test). On pass the span is d + 1 under both conventions —
  Algorithm 1's "the current and the next d subtasks"; under "d+1" the matched subtask is the one
  routed next, under "d" it is the last step of the span.
* **CD.** Both predictors rolled H = min(``cd_horizon``, steps left) steps from cur; pair j
  converges when cos(SP_SLM^j, SP_LLM^j) > κ; the *last* converging j ≤ H is chosen. The span is
  j (the steps before the converged subtask, which is routed afresh); with
  ``cd_include_convergence`` it is j + 1. ``cd_horizon`` defaults to 5 (not recovered from the
  paper; 5 matches κ's saturation and keeps the roll-out cheap). Pair 1 is the SSE pair.
* **SD.** SD(request, cur, expected_next=None) → parts; fewer than ``sd_min_parts`` (2) parts is no
  decomposition. Each part gets the SSE test only (Algorithm 1 and the detailed design; the
  overview's "repeat the above steps for each sub-subtask" is not followed), seen as the current
  subtask of the step's chain (same history, same seq, same κ). All parts pass → the SLM runs the
  parts in place of the step; the first failing part stops the checks (all-or-nothing) and the
  original step goes to the LLM. ``sd_mode = "partial"`` (beyond the paper, ``hera-sd-partial``):
  every part gets the same test, recorded as ``sd_slm_<k>`` (1 = SLM, 0 = LLM); each part then runs
  on its own executor (``Decision.part_executors``) in order, each seeing the parts before it as
  history, and one passing part suffices (none: the whole step to the LLM, one call instead of
  several). ``expected_next`` is None because the predictor protocol returns
  embeddings, not text; a decomposer that wants SP_LLM's text predicts it itself.
* **Fallback.** The step on the LLM.

* **Similarity (beyond the paper).** ``similarity = "divergence"`` (default): every test above
  compares κ with the divergence estimator's P(the SLM's and the LLM's next subtasks name the same
  content) — learned on the profiled trees from the step's embedding, its position and the SP
  cosine (``estimators/divergence.py``); the paper's SBERT cosine of the two predictions cannot see
  the entity or number that differs (held-out AUC 0.53 on the simulated world). For pair (i, j)
  of a roll-out the estimator reads the subtask the SLM's i-th prediction came from, at id
  seq + i − 1. ``"sp-cosine"``: the paper's cosine (``hera-paper``). Without a divergence
  estimator (a deployment bootstrapped before it) the cosine is used.
* **Verify (beyond the paper).** After the SLM ran a step, :meth:`HeraPolicy.verify` scores its
  result with the divergence estimator's post-execution head (the step's features plus the SLM's
  mean token logprob): at or above ``verify_threshold`` it is kept, below it the same step is
  re-run on the LLM (branch ``verify``; both calls and costs are recorded, the edge time counts in
  latency). Every SLM step is verified (URC, SSE, SLE and CD steps alike) except decomposition
  parts. ``use_verify`` is the ablation switch (``hera-no-verify``); ``hera-verify-only`` is
  "every step on the SLM first (branch ``speculate``), verified" (``slm_first``).
* **Calibration.** With ``use_calibration`` the active calibration (``training/calibration.py``),
  fitted on this deployment's profiled traffic for exactly the active estimator versions, sets
  τ_req, κ base and the verify threshold, and may switch stages off (an untrusted URC, an
  untrusted verify head); it never switches on a stage the variant removed. Without one the
  settings apply: the paper's constants.
* **Cold start (beyond the paper).** ``hera`` itself (not its ablations), with
  ``cold_start`` on and no estimators at all: every step to the SLM (branch ``cold-start-verify``,
  scores ``cold_start``, ``cold_start_threshold``, ``cold_start_samples``), its result kept when
  the SLM's mean token logprob reaches the cold-start threshold and re-run on the LLM otherwise
  (``routing/coldstart.py``; the pipeline passes the threshold learned from shadow traffic, a
  replay passes its own or uses the configured default). Any other variant without estimators
  raises :class:`~hera_router.routing.base.MissingEstimatorsError`.
* **hera-paper.** The paper-faithful policy: SP cosine, the paper's constants, no verify, no
  calibration.

Roll-outs are computed once per decision and reused: SSE's pair is the first pair of SLE/CD, and
when SSE fails the SLM is rolled to max(L, H) in one call so SLE and CD share it.

Every span is clipped to the steps left (``max_steps`` − seq): the pipeline stops there anyway.

Scores (``Decision.scores``, floats only so they store as JSON): ``urc``, ``sse_sim``, ``sp_cos``
(the SP cosine, whichever similarity decided), ``dp_d``
(−1 means ∞), ``sle_lookahead``, ``sle_sim``, ``cd_sim_<j>`` for each j evaluated, ``cd_j``,
``sd_parts``, ``sd_sim_<k>`` for each part checked. A stage that did not run leaves no score.

Ablations are settings (``use_urc``, ``use_sse``, ``use_sle``, ``use_cd``, ``use_sd``,
``position_aware_kappa``) and registered names (:data:`VARIANTS`): each switch removes exactly its
stage; the remaining stages run in the same order.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hera_router.config import RoutingSettings
from hera_router.routing import coldstart
from hera_router.routing.base import (
    Decision,
    Executor,
    MissingEstimatorsError,
    Policy,
    PolicyBase,
    RoutingContext,
    Verdict,
)
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.estimators import ChainState, Estimators, NextSubtaskPredictor, Vector, cosine

CALIBRATED_VALUES = ("tau_req", "kappa_base", "verify_threshold")
"""Thresholds a calibration sets (``training/calibration.py``)."""
CALIBRATED_SWITCHES = ("use_urc", "use_sse", "use_sle", "use_cd", "use_sd", "use_verify")
"""Stages a calibration may turn off (an untrusted estimator, or a stage that only cost accuracy on
the validation traffic); it never turns on a stage the policy's variant removed."""

PAPER: Mapping[str, Any] = {"similarity": "sp-cosine", "use_verify": False, "use_calibration": False}
"""The paper-faithful HERA: SBERT cosine of the SP predictions, the paper's constants, no verify."""

VARIANTS: dict[str, Mapping[str, Any]] = {
    "hera": {},
    "hera-paper": PAPER,
    "hera-no-verify": {"use_verify": False},
    "hera-verify-only": {"slm_first": True, "use_urc": False},
    "hera-uncalibrated": {"use_calibration": False},
    "hera-no-sd": {"use_sd": False},
    "hera-no-cd": {"use_cd": False},
    "hera-no-sle": {"use_sle": False},
    "hera-urc-only": {"use_sse": False, "use_sle": False, "use_cd": False, "use_sd": False},
    "hera-no-urc": {"use_urc": False},
    "hera-fixed-kappa": {"position_aware_kappa": False},
    "hera-sd-partial": {"sd_mode": "partial"},
    "hera-paper-sd-partial": {**PAPER, "sd_mode": "partial"},
    # The cumulative rows of the paper's Table 4.
    "hera-urc-sse-sle": {"use_cd": False, "use_sd": False},
    "hera-urc-sse": {"use_sle": False, "use_cd": False, "use_sd": False},
}
"""Registered policy name → the settings it overrides."""


def graph_kappa(context: RoutingContext, settings: RoutingSettings) -> float:
    """κ for the current step: :func:`kappa` of its ID in its chain, or, for a step of a plan node
    with ``graph_kappa = "depth"``, of its depth on the longest dependency path (module docstring)."""
    if context.graph is None or settings.graph_kappa == "position":
        return kappa(context.seq, settings)
    return kappa(context.graph.depth_steps + context.seq, settings)


def kappa(seq: int, settings: RoutingSettings) -> float:
    """κ for the step with sequence number ``seq`` (0 = the root request)."""
    if not settings.position_aware_kappa:
        return settings.kappa_fixed
    step_id = seq + settings.id_origin
    # Rounded: 0.6 + 0.02 * 5 is 0.7000000000000001 in floating point, and a boundary that moves
    # by an ulp with the ID would make "sim > κ" depend on representation error.
    return round(settings.kappa_base + settings.kappa_step * min(step_id, settings.kappa_cap), 10)


@dataclass
class _Rollout:
    """One predictor's roll-out from the current state, extended (re-rolled) only when asked for more."""

    predictor: NextSubtaskPredictor
    state: ChainState
    predictions: list[Vector] = field(default_factory=list)

    def upto(self, steps: int) -> list[Vector]:
        if steps > len(self.predictions):
            self.predictions = self.predictor.roll(self.state, steps)
            if len(self.predictions) < steps:
                raise ValueError(f"a subtask predictor returned {len(self.predictions)} predictions for {steps} steps")
        return self.predictions[:steps]


class HeraPolicy(PolicyBase):
    """HERA with the stages and conventions of ``settings`` (see the module docstring)."""

    URC_CACHE_SIZE = 4096
    needs_estimators = True
    """Every variant reads the learned estimators (``routing.estimators.needs_estimators``)."""

    def __init__(self, settings: RoutingSettings, name: str = "hera") -> None:
        self.name = name
        self.settings = settings
        # URC depends on the request text and the estimator version only, and every later step of
        # a request asks again: remember recent scores instead of re-running the encoder.
        self._urc_scores: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._urc_lock = threading.Lock()
        self._calibrated: dict[str, RoutingSettings] = {}
        self.verifies = settings.use_verify
        """Whether this policy may want its SLM steps verified (the pipeline then asks :meth:`verify`)."""
        self.cold_starts = name == "hera" and settings.cold_start and settings.use_verify
        """Whether this policy routes without estimators (cold-start mode) instead of failing."""
        self.cold_start = ColdStart(settings.cold_start_threshold)
        """The cold-start threshold used when the caller passes none (the configured default)."""

    def _urc(self, estimators: Estimators, request: str) -> float:
        key = (estimators.urc.version, request)
        with self._urc_lock:
            if key in self._urc_scores:
                self._urc_scores.move_to_end(key)
                return self._urc_scores[key]
        score = float(estimators.urc.score(request))
        with self._urc_lock:
            self._urc_scores[key] = score
            while len(self._urc_scores) > self.URC_CACHE_SIZE:
                self._urc_scores.popitem(last=False)
        return score

    def effective(self, estimators: Estimators | None) -> RoutingSettings:
        """The settings with the active calibration applied (see :data:`CALIBRATED_VALUES`)."""
        calibration = estimators.calibration if estimators is not None and self.settings.use_calibration else None
        if not calibration:
            return self.settings
        key = str(calibration.get("version", id(calibration)))
        with self._urc_lock:
            cached = self._calibrated.get(key)
        if cached is not None:
            return cached
        update: dict[str, Any] = {name: float(calibration[name]) for name in CALIBRATED_VALUES if name in calibration}
        for switch in CALIBRATED_SWITCHES:
            if calibration.get(switch) is False:
                update[switch] = False
        effective = self.settings.model_copy(update=update)
        with self._urc_lock:
            self._calibrated = {key: effective}
        return effective

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None,
        cold_start: ColdStart | None = None,
    ) -> Verdict | None:
        """Judge the SLM's run of ``context.current`` (its mean token logprob ``confidence``).

        None when the stage does not apply: turned off (by the variant or by the calibration), or
        no divergence estimator with a post-execution head is loaded. Then the step is kept.
        Without estimators, a cold-starting policy judges by the logprob against ``cold_start``'s
        threshold (:attr:`cold_start` when None is passed).
        """
        if estimators is None and self.cold_starts:
            return self._verify_cold(confidence, cold_start or self.cold_start)
        if estimators is None or estimators.divergence is None or estimators.embed is None:
            return None
        s = self.effective(estimators)
        if not s.use_verify or not estimators.divergence.can_verify:
            return None
        started = time.perf_counter()
        state = self._state(context)
        sp_cos = cosine(estimators.sp_slm.roll(state, 1)[0], estimators.sp_llm.roll(state, 1)[0])
        score = estimators.divergence.accept_vec(estimators.embed(context.current), context.seq, sp_cos, confidence)
        return Verdict(
            accept=score >= s.verify_threshold,
            score=score,
            threshold=s.verify_threshold,
            policy=self.name,
            estimator_versions=dict(estimators.versions),
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )

    def _verify_cold(self, confidence: float | None, cold: ColdStart) -> Verdict:
        accept = coldstart.accepts(confidence, cold.threshold)
        score = coldstart.NO_LOGPROB_SCORE if confidence is None else float(confidence)
        judged = "had no logprobs" if confidence is None else f"mean token logprob {score:.3f} < {cold.threshold:.3f}"
        why = f"cold start: the SLM's result {judged} ({cold.describe()}); re-ran on the cloud"
        return Verdict(
            accept=accept,
            score=score,
            threshold=cold.threshold,
            policy=self.name,
            estimator_versions={coldstart.REGISTRY_NAME: cold.version} if cold.version else {},
            reason=None if accept else why,
        )

    def _decide_cold(self, cold: ColdStart) -> Decision:
        return Decision(
            executor=Executor.SLM,
            branch=coldstart.BRANCH,
            policy=self.name,
            scores={
                "cold_start": 1.0,
                "cold_start_threshold": cold.threshold,
                "cold_start_samples": float(cold.samples),
            },
            estimator_versions={coldstart.REGISTRY_NAME: cold.version} if cold.version else {},
        )

    @staticmethod
    def _state(context: RoutingContext) -> ChainState:
        history = tuple((step.subtask, step.result) for step in context.history)
        return ChainState(request=context.request, history=history, current=context.current, seq=context.seq)

    def decide_cold(self, context: RoutingContext, cold_start: ColdStart | None = None) -> Decision:
        return self.decide(context, None, cold_start=cold_start)

    def decide(
        self, context: RoutingContext, estimators: Estimators | None = None, cold_start: ColdStart | None = None
    ) -> Decision:
        """Route ``context.current``; without estimators, in cold-start mode (``cold_start``: the
        threshold in force, recorded on the decision) or, for a variant that has none, raise."""
        if estimators is None:
            if self.cold_starts:
                return self._decide_cold(cold_start or self.cold_start)
            raise MissingEstimatorsError(self.name)
        started = time.perf_counter()
        scores: dict[str, float] = {}
        settings = self.effective(estimators)
        step_kappa = graph_kappa(context, settings)
        executor, branch, span, parts = self._evaluate(context, estimators, settings, step_kappa, scores)
        versions = dict(estimators.versions) or {
            role: handle.version
            for role, handle in (
                ("urc", estimators.urc),
                ("sp_slm", estimators.sp_slm),
                ("sp_llm", estimators.sp_llm),
                ("dp", estimators.dp),
                ("sd", estimators.sd),
            )
        }
        part_executors: tuple[Executor, ...] = ()
        if parts and settings.sd_mode == "partial":
            part_executors = tuple(
                Executor.SLM if scores.get(f"sd_slm_{k}", 1.0) else Executor.LLM for k in range(1, len(parts) + 1)
            )
        return Decision(
            executor=executor,
            branch=branch,
            policy=self.name,
            span=span,
            parts=parts,
            part_executors=part_executors,
            scores=scores,
            kappa=step_kappa,
            estimator_versions=versions,
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )

    def _evaluate(  # noqa: PLR0911 - one return per stage, in the paper's order
        self,
        context: RoutingContext,
        estimators: Estimators,
        s: RoutingSettings,
        step_kappa: float,
        scores: dict[str, float],
    ) -> tuple[Executor, str, int, tuple[str, ...]]:
        left = max(1, context.max_steps - context.seq)

        if s.slm_first:
            return Executor.SLM, "speculate", 1, ()

        if s.use_urc:
            scores["urc"] = urc = self._urc(estimators, context.request)
            if urc > s.tau_req:
                return Executor.SLM, "urc", left, ()

        state = self._state(context)
        slm = _Rollout(estimators.sp_slm, state)
        llm = _Rollout(estimators.sp_llm, state)
        horizon = min(s.cd_horizon, left) if s.use_cd else 0
        compare = _Comparison(s, estimators, context)

        if s.use_sse:
            scores["sse_sim"] = sim = compare(slm, llm, 1, 1, scores, "sp_cos")
            if sim > step_kappa:
                return Executor.SLM, "sse", 1, ()

        if s.use_sle and (span := self._sle(context, estimators, slm, llm, horizon, step_kappa, scores, compare)):
            return Executor.SLM, "sle", min(span, left), ()

        if horizon > 0 and (span := self._cd(slm, llm, horizon, step_kappa, scores, compare)):
            return Executor.SLM, "cd", min(span, left), ()

        if s.use_sd:
            parts = self._decompose(context, estimators, s, state.history, step_kappa, scores)
            if parts:
                return Executor.SLM, "sd", 1, parts

        return Executor.LLM, "fallback", 1, ()

    def _sle(
        self,
        context: RoutingContext,
        estimators: Estimators,
        slm: _Rollout,
        llm: _Rollout,
        horizon: int,
        step_kappa: float,
        scores: dict[str, float],
        compare: _Comparison,
    ) -> int | None:
        """The span (d + 1) if SLE passes."""
        distance = estimators.dp.predict(context.current, context.seq)
        scores["dp_d"] = -1.0 if distance is None else float(distance)
        if distance is None:
            return None
        lookahead = max(1, distance + 1 if self.settings.sle_lookahead == "d+1" else distance)
        scores["sle_lookahead"] = float(lookahead)
        # One roll serves SLE and, if SLE fails, CD (roll-outs are the dominant cost).
        slm.upto(max(lookahead, horizon))
        scores["sle_sim"] = sim = compare(slm, llm, lookahead, 1)
        return distance + 1 if sim > step_kappa else None

    def _cd(
        self,
        slm: _Rollout,
        llm: _Rollout,
        horizon: int,
        step_kappa: float,
        scores: dict[str, float],
        compare: _Comparison,
    ) -> int | None:
        """The span up to the last convergence point within the horizon, if there is one."""
        converged = 0
        slm.upto(horizon), llm.upto(horizon)
        for j in range(1, horizon + 1):
            scores[f"cd_sim_{j}"] = sim = compare(slm, llm, j, j)
            if sim > step_kappa:
                converged = j  # keep going: the paper takes the last convergence point
        if not converged:
            return None
        scores["cd_j"] = float(converged)
        return converged + int(self.settings.cd_include_convergence)

    def _decompose(
        self,
        context: RoutingContext,
        estimators: Estimators,
        s: RoutingSettings,
        history: Sequence[tuple[str, str]],
        step_kappa: float,
        scores: dict[str, float],
    ) -> tuple[str, ...]:
        """The parts if the decomposition passes, else (). All-or-nothing: every part must pass.
        Partial: every part is tested, ``sd_slm_<k>`` records 1 (SLM) or 0 (LLM), and one passing
        part is enough (with none the step goes to the LLM whole, one call instead of several)."""
        parts = tuple(p.strip() for p in estimators.sd.decompose(context.request, context.current, None) if p.strip())
        scores["sd_parts"] = float(len(parts))
        if len(parts) < s.sd_min_parts:
            return ()
        for number, part in enumerate(parts, start=1):
            state = ChainState(request=context.request, history=history, current=part, seq=context.seq)
            part_context = RoutingContext(context.request_id, context.request, part, context.seq)
            sim = _Comparison(s, estimators, part_context)(
                _Rollout(estimators.sp_slm, state), _Rollout(estimators.sp_llm, state), 1, 1
            )
            scores[f"sd_sim_{number}"] = sim
            if s.sd_mode == "partial":
                scores[f"sd_slm_{number}"] = float(sim > step_kappa)
            elif not sim > step_kappa:
                return ()  # one failing part sends the original step to the LLM; the rest cannot help
        if s.sd_mode == "partial" and not any(scores[f"sd_slm_{k}"] for k in range(1, len(parts) + 1)):
            return ()
        return parts


class _Comparison:
    """The similarity every test compares with κ: the divergence estimator's P(agree) when the
    policy uses it and one is loaded, else the paper's cosine of the two predictions.

    For a roll-out, pair (i, j) compares the SLM's i-th and the LLM's j-th predicted subtask; the
    divergence estimator reads the subtask the SLM's i-th prediction was made from (the current
    step for i = 1, else the SLM's own (i-1)-th prediction) at sequence id seq + i - 1.
    """

    def __init__(self, settings: RoutingSettings, estimators: Estimators, context: RoutingContext) -> None:
        self.divergence = estimators.divergence if settings.similarity == "divergence" else None
        self.embed = estimators.embed
        self.context = context
        self._current: Vector | None = None

    def __call__(
        self, slm: _Rollout, llm: _Rollout, i: int, j: int, scores: dict[str, float] | None = None, key: str = ""
    ) -> float:
        slm_i, llm_j = slm.upto(i)[i - 1], llm.upto(j)[j - 1]
        cos = cosine(slm_i, llm_j)
        if scores is not None and key:
            scores[key] = cos
        if self.divergence is None or self.embed is None:
            return cos
        if i == 1:
            if self._current is None:
                self._current = self.embed(self.context.current)
            source = self._current
        else:
            source = slm.upto(i - 1)[i - 2]
        return self.divergence.agreement_vec(source, self.context.seq + i - 1, cos)


def hera_variant(name: str) -> Callable[[RoutingSettings], Policy]:
    """The factory of a registered HERA variant: the process's settings with the variant's overrides."""
    overrides = VARIANTS[name]

    def factory(settings: RoutingSettings) -> Policy:
        return HeraPolicy(settings.model_copy(update=dict(overrides)), name=name)

    return factory
