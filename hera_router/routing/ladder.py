"""HERA over an ordered ladder of models, cheapest first (beyond the paper, issue 18). Pure.

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
  (``evaluation/ladder.py``: :func:`fit_pair_thresholds`).
* Profiling stays linear: a profiled step is one prompt answered by every rung (N calls), on the
  chain the top rung writes. A full binary tree per pair over D steps costs 2^D calls per request,
  an N-ary tree N^D; per-pair labels need only the two rungs' answers to the same prompt, so N
  models cost N × D calls per request, and adding a model adds D.
* The same judge runs in the simulated evaluation and would run in the pipeline's verify hop;
  only the two-rung case (``edge``, ``cloud``) is wired into the pipeline today.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
