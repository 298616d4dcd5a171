"""HERA over an ordered ladder of models, cheapest first (beyond the paper). Pure.

The paper decides between one SLM and one LLM. With N models ordered by cost, the decision becomes
"is the next rung up needed?", asked one adjacent pair at a time:

* a step starts on the cheapest rung (``start``; a request near its cost cap or a tenant over
  budget never starts higher, ``routing/constraints.py``);
* after rung k ran it, the pair (k, k+1)'s judge scores the result; below the pair's threshold
  the same step is re-run on rung k+1 (the verify stage, escalating one rung at a time), and so
  on until a rung's result is accepted or the top rung ran it. The top rung is never judged.

Conventions, stated once:

* The judge of pair (k, k+1) is the rung-k result's confidence (mean token logprob here, as in
  the two-model verify stage); its threshold is fitted per pair on profiled steps labelled
  "escalating would not have helped": rung k right, or rung k+1 wrong too
  (``training/ladder.py``: :func:`fit_pair_thresholds`).
* Profiling stays linear: a profiled step is one prompt answered by every rung (N calls), on the
  chain the top rung writes. A full binary tree per pair over D steps costs 2^D calls per request,
  an N-ary tree N^D; per-pair labels need only the two rungs' answers to the same prompt, so N
  models cost N × D calls per request, and adding a model adds D.
* The same judge runs in the simulated evaluation and in the pipeline's verify hop
  (:class:`LadderPolicy`, ``hera-ladder``): with ``HERA_MODELS`` set, each step records its tier,
  runs on that tier's backend from that tier's queue, and a rejected result is re-run on the next
  tier up; without it the ladder is today's two rungs (edge, cloud).
* Thresholds in the pipeline are settings (``HERA_ROUTING__LADDER_THRESHOLDS``, per pair, and
  ``__LADDER_THRESHOLD`` for the rest); a result without logprobs cannot be judged and goes up
  (the conservative choice: accuracy over cost), so tiers below the top should ask for logprobs.
* The start rung, before any call (``HERA_ROUTING__LADDER_ESTIMATORS``): with the per-pair start
  estimators (``estimators/ladder_pair.py``) a step starts on the cheapest rung they judge
  sufficient, P(next rung needed) below the pair's position-aware threshold, never below
  ``__LADDER_START``; the artifact's verify thresholds (fitted together with its start thresholds)
  replace the settings'. Without the file, every step starts on ``__LADDER_START``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hera_router.config import RoutingSettings
from hera_router.db.enums import Executor
from hera_router.estimators.ladder_pair import LadderStarts, TextEncoder, encoder_named
from hera_router.routing.base import Decision, PolicyBase, RoutingContext, Verdict
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.estimators import Estimators

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ladder:
    """Thresholds of the adjacent pairs: ``thresholds[k]`` judges rung k's results (k < N - 1)."""

    names: tuple[str, ...]
    thresholds: tuple[float, ...]
    start: int = 0

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ValueError("a ladder has at least two rungs")
        if len(self.thresholds) != len(self.names) - 1:
            raise ValueError(f"{len(self.names)} rungs need {len(self.names) - 1} pair thresholds")
        if not 0 <= self.start < len(self.names):
            raise ValueError(f"start rung {self.start} is not on the ladder")

    @property
    def top(self) -> int:
        return len(self.names) - 1

    def escalate(self, rung: int, confidence: float) -> int | None:
        """The rung to re-run the step on after ``rung`` produced a result of ``confidence``, or
        None to accept it. Always the next rung up: never skips one."""
        if rung >= self.top or confidence >= self.thresholds[rung]:
            return None
        return rung + 1


def pair_threshold(scores: Sequence[float], helped: Sequence[bool], tolerance: float) -> float:
    """The lowest threshold at which at most ``tolerance`` of the accepted steps are ones where
    escalating would have helped (``helped``); accepts nothing (``inf``) if none qualifies."""
    if len(scores) != len(helped):
        raise ValueError("one label per score")
    ranked = sorted(zip(scores, helped, strict=True), key=lambda pair: -pair[0])
    best = float("inf")
    bad = 0
    for count, (score, was_helped) in enumerate(ranked, start=1):
        bad += int(was_helped)
        # Accept everything scoring >= score; ties are accepted together, so only cut after them.
        if count < len(ranked) and ranked[count][0] == score:
            continue
        if bad / count <= tolerance:
            best = score
    return best


class LadderPolicy(PolicyBase):
    """HERA's ladder in the live pipeline: a step starts on ``HERA_ROUTING__LADDER_START`` (the
    cheapest rung) or, with the per-pair start estimators, on the cheapest rung they judge
    sufficient; the verify stage climbs one rung at a time.

    Needs none of HERA's estimators: the judge of a pair is the lower rung's mean token logprob,
    and the start estimators are their own artifact (with the process's SBERT embedder).
    """

    name = "hera-ladder"
    verifies = True
    """Every rung but the top is judged after it ran (``pipeline/routing.py`` verify stage)."""

    def __init__(
        self, settings: RoutingSettings, starts: LadderStarts | None = None, encoder: TextEncoder | None = None
    ) -> None:
        self.settings = settings
        self.starts = starts if starts is not None else _load_starts(settings)
        self._version = self.starts.version if self.starts is not None else ""
        self._encoder = encoder

    def check_tiers(self, tiers: Sequence[str]) -> None:
        """Drop the start estimators if they were fitted for other tiers than ``HERA_MODELS``'
        (their rungs would be someone else's): the ladder then starts as without them, and the
        log says why. Without model tiers (edge, cloud) every artifact applies, as two rungs."""
        if self.starts is None or not tiers or tuple(tiers) == self.starts.names:
            return
        log.error(
            "HERA_ROUTING__LADDER_ESTIMATORS was fitted for the tiers %s, not HERA_MODELS' %s: "
            "ignored, ladder steps start on rung %d",
            ", ".join(self.starts.names),
            ", ".join(tiers),
            self.settings.ladder_start,
        )
        self.starts, self._version = None, ""

    def _encode(self, text: str) -> np.ndarray[Any, Any]:
        if self._encoder is None:
            assert self.starts is not None
            self._encoder = encoder_named(self.starts.encoder)
        vector: np.ndarray[Any, Any] = self._encoder.embed_many([text])[0]
        return vector

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        # The executor is a placeholder for the rung's role; the pipeline resolves both.
        floor = self.settings.ladder_start
        if self.starts is None:
            return Decision(executor=Executor.SLM, branch="ladder", policy=self.name, rung=floor)
        started = time.perf_counter()
        chosen, needed = self.starts.start(self._encode(context.current), context.seq)
        scores = {f"ladder_r{k}_p_needed": p for k, p in enumerate(needed)} | {
            f"ladder_r{k}_skip_at": pair.rule.threshold(context.seq) for k, pair in enumerate(self.starts.pairs)
        }
        rung = max(chosen, floor)
        # With HERA_MODELS the pipeline sets the executor to the rung's role; without, the two
        # rungs are edge and cloud, and a step that starts above the edge runs on the cloud.
        return Decision(
            executor=Executor.SLM if rung == 0 else Executor.LLM,
            branch="ladder-start" if chosen > floor else "ladder",
            policy=self.name,
            rung=rung,
            scores=scores,
            estimator_versions={"ladder-starts": self._version},
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )

    def threshold(self, rung: int) -> float:
        if self.starts is not None:
            verify = self.starts.verify_thresholds
            return verify[rung] if rung < len(verify) else self.settings.ladder_threshold
        thresholds = self.settings.ladder_thresholds
        return thresholds[rung] if rung < len(thresholds) else self.settings.ladder_threshold

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None = None,
        cold_start: ColdStart | None = None,
    ) -> Verdict:
        """The two-role case (no ``HERA_MODELS``): the ladder is edge, cloud; judge the edge's result."""
        return self.judge(0, 2, confidence)

    def judge(self, rung: int, rungs: int, confidence: float | None) -> Verdict:
        """Keep rung ``rung``'s result (of ``rungs``), or send the step one rung up."""
        started = time.perf_counter()
        threshold = self.threshold(rung) if rung < rungs - 1 else float("-inf")
        if confidence is None:
            accept = rung >= rungs - 1  # no logprobs: cannot judge, so climb (the top is never judged)
            score = float("-inf")
        else:
            ladder = Ladder(
                names=tuple(str(k) for k in range(rungs)),
                thresholds=tuple(self.threshold(k) for k in range(rungs - 1)),
            )
            accept = ladder.escalate(rung, confidence) is None
            score = confidence
        return Verdict(
            accept=accept,
            score=score,
            threshold=threshold,
            policy=self.name,
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )


def _load_starts(settings: RoutingSettings) -> LadderStarts | None:
    """The start estimators named by ``HERA_ROUTING__LADDER_ESTIMATORS``; None (today's ladder) when
    unset or not there. A file that is there but unreadable is an error, not a silent fallback."""
    path = settings.ladder_estimators
    if path is None:
        return None
    if not path.is_file():
        log.warning(
            "HERA_ROUTING__LADDER_ESTIMATORS=%s: no such file; ladder steps start on rung %d",
            path,
            settings.ladder_start,
        )
        return None
    return LadderStarts.load(path)
