"""A request's steps as the console shows them: each step (and each part of a decomposed step)
beside its decision's scores against their thresholds, its verify escalations and its model calls.

Pure functions over :class:`RequestDetail`, so the tree is tested without a database.

Which score meets which threshold (``routing/hera.py``, ``routing/hybridllm.py``, the verify stage
and the ladder in ``pipeline/routing.py``):

- ``sse_sim``, ``sle_sim``, ``cd_sim_<j>``, ``sd_sim_<k>``: similarity against the decision's κ
  (``kappa``), passing when greater;
- ``urc``: against ``HERA_ROUTING__TAU_REQ`` (not on the record, so today's setting is shown);
- ``score`` with ``threshold`` (HybridLLM's router): passing when at least the threshold;
- ``verify_score`` with ``verify_threshold``, ``ladder_r<k>_score`` with ``ladder_r<k>_threshold``:
  the verify stage's judgement, an escalation when not accepted.

Every other score is listed with no threshold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hera_router.api.console.schemas import ConsoleStep, Escalation, ScoreCheck
from hera_router.api.schemas import DecisionView, ModelCallView, RequestDetail, SubtaskNode

_SIMILARITY = re.compile(r"^(sse_sim|sle_sim|cd_sim_\d+|sd_sim_\d+)$")
_LADDER = re.compile(r"^ladder_r(\d+)_(score|threshold|accept)$")
_JUDGED = frozenset({"verify_score", "verify_threshold", "verify_accept", "verify_ms", "score", "threshold", "urc"})


def score_checks(scores: Mapping[str, Any], kappa: float | None, tau_req: float) -> list[ScoreCheck]:
    """The decision's scores, each with the threshold it was compared against where one applies."""
    checks: list[ScoreCheck] = []
    if isinstance(scores.get("urc"), int | float):
        urc = float(scores["urc"])
        checks.append(
            ScoreCheck(name="urc", score=urc, threshold=tau_req, passed=urc > tau_req, rule=">", source="setting")
        )
    if isinstance(scores.get("score"), int | float) and isinstance(scores.get("threshold"), int | float):
        score, threshold = float(scores["score"]), float(scores["threshold"])
        checks.append(
            ScoreCheck(
                name="score", score=score, threshold=threshold, passed=score >= threshold, rule=">=", source="decision"
            )
        )
    for name, value in scores.items():
        if name in _JUDGED or _LADDER.match(name) or not isinstance(value, int | float):
            continue
        if _SIMILARITY.match(name) and kappa is not None:
            passed = float(value) > kappa
            checks.append(
                ScoreCheck(name=name, score=float(value), threshold=kappa, passed=passed, rule=">", source="decision")
            )
        else:
            checks.append(ScoreCheck(name=name, score=float(value), threshold=None, passed=None, rule="", source=""))
    return checks


def escalations(scores: Mapping[str, Any]) -> list[Escalation]:
    """The verify stage's judgements on the decision (one, or one per ladder rung climbed)."""
    found: list[Escalation] = []
    if "verify_accept" in scores:
        found.append(
            Escalation(
                stage="verify",
                score=_number(scores.get("verify_score")),
                threshold=_number(scores.get("verify_threshold")),
                accepted=bool(scores["verify_accept"]),
            )
        )
    rungs = sorted({int(match.group(1)) for name in scores if (match := _LADDER.match(name))})
    for rung in rungs:
        if f"ladder_r{rung}_accept" in scores:
            found.append(
                Escalation(
                    stage=f"ladder rung {rung}",
                    score=_number(scores.get(f"ladder_r{rung}_score")),
                    threshold=_number(scores.get(f"ladder_r{rung}_threshold")),
                    accepted=bool(scores[f"ladder_r{rung}_accept"]),
                )
            )
    return found


def console_steps(detail: RequestDetail, tau_req: float) -> list[ConsoleStep]:
    """The request's steps in order, each part right after the step it belongs to."""
    decisions = {decision.seq: decision for decision in detail.decisions}
    calls: dict[Any, list[ModelCallView]] = {}
    for call in detail.model_calls.items:
        calls.setdefault(call.subtask_id, []).append(call)
    return [
        _step(node, depth, decisions.get(node.seq) if depth == 0 else None, calls.get(node.id, []), tau_req)
        for node, depth in _walk(detail.subtasks, 0)
    ]


def _walk(nodes: Sequence[SubtaskNode], depth: int) -> Iterator[tuple[SubtaskNode, int]]:
    for node in nodes:
        yield node, depth
        yield from _walk(node.children, depth + 1)


def _step(
    node: SubtaskNode, depth: int, decision: DecisionView | None, calls: list[ModelCallView], tau_req: float
) -> ConsoleStep:
    step = ConsoleStep(
        id=node.id,
        seq=node.seq,
        part=node.part,
        depth=depth,
        text=node.text,
        output=node.output,
        error=node.error,
        executor=node.executor,
        tier=node.tier,
        branch=node.branch,
        status=node.status,
        calls=calls,
        latency_ms=sum(call.latency_ms for call in calls),
        cost_usd=sum(call.cost_usd for call in calls),
        tokens_in=sum(call.tokens_in for call in calls),
        tokens_out=sum(call.tokens_out for call in calls),
    )
    if decision is not None:
        step.policy = decision.policy
        step.kappa = decision.kappa
        step.span = decision.span
        step.checks = score_checks(decision.scores, decision.kappa, tau_req)
        step.escalations = escalations(decision.scores)
        step.fallback_reason = decision.fallback_reason
        step.estimator_versions = dict(decision.estimator_versions)
        step.decide_ms = decision.elapsed_ms
    return step


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
