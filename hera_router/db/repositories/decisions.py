"""Routing decisions: one per planned step, the record evaluation and retraining read."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from hera_router.db.enums import Executor
from hera_router.db.models import Decision
from hera_router.db.repositories._dml import insert_if_absent, rows_changed

_GET = select(Decision).where(Decision.request_id == bindparam("request_id"), Decision.seq == bindparam("seq"))


class DecisionRepository:
    """Decisions keyed by (request, seq)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def branch_counts(self, request_ids: Sequence[uuid.UUID]) -> dict[str, tuple[int, int]]:
        """branch -> (decisions, steps they cover) over ``request_ids``.

        Every step has one decision row; a decision that covers several steps (SLE/CD/URC) is
        copied onto the covered ones with ``span_origin`` in its scores, so the decisions are the
        rows without it and the steps are all the rows.
        """
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(request_ids), 500):
            rows = self.session.execute(
                select(Decision.branch, Decision.scores).where(
                    Decision.request_id.in_(request_ids[start : start + 500])
                )
            )
            for branch, scores in rows:
                decisions, steps = counts.get(branch, (0, 0))
                counts[branch] = (decisions + int("span_origin" not in (scores or {})), steps + 1)
        return counts

    def add(
        self,
        *,
        request_id: uuid.UUID,
        seq: int,
        policy: str,
        executor: Executor,
        branch: str,
        elapsed_ms: float,
        span: int = 1,
        scores: Mapping[str, Any] | None = None,
        kappa: float | None = None,
        estimator_versions: Mapping[str, Any] | None = None,
        fallback_reason: str | None = None,
    ) -> bool:
        """Store the decision for step ``seq``; True if it was new.

        If the step was already decided (a redelivered router task) the first decision stands and
        this returns False: re-running the policy could pick differently, and the subtasks already
        follow the first choice.
        """
        return insert_if_absent(
            self.session,
            Decision,
            {
                "request_id": request_id,
                "seq": seq,
                "policy": policy,
                "executor": executor,
                "branch": branch,
                "span": span,
                "scores": dict(scores or {}),
                "kappa": kappa,
                "estimator_versions": dict(estimator_versions or {}),
                "elapsed_ms": elapsed_ms,
                "fallback_reason": fallback_reason,
            },
            ("request_id", "seq"),
        )

    def set_fallback(self, request_id: uuid.UUID, seq: int, executor: Executor, reason: str) -> bool:
        """Record that step ``seq`` ran on ``executor`` instead of the policy's choice, and why
        (e.g. the edge was down). False if the step has no decision."""
        result = self.session.execute(
            update(Decision)
            .where(Decision.request_id == request_id, Decision.seq == seq)
            .values(executor=executor, fallback_reason=reason)
        )
        return rows_changed(result) == 1

    def record_verdict(
        self,
        request_id: uuid.UUID,
        seq: int,
        *,
        accept: bool,
        score: float,
        threshold: float,
        reason: str | None,
        elapsed_ms: float = 0.0,
    ) -> bool:
        """Add the verify stage's judgement to step ``seq``'s decision; a rejection also moves the
        decision to the LLM with branch ``verify`` and says why. False if there is no decision."""
        decision = self.get(request_id, seq)
        if decision is None:
            return False
        scores = {**(decision.scores or {}), "verify_score": score, "verify_threshold": threshold}
        scores["verify_accept"] = 1.0 if accept else 0.0
        scores["verify_ms"] = elapsed_ms
        decision.scores = scores
        if not accept:
            decision.executor = Executor.LLM
            decision.branch = "verify"
            decision.fallback_reason = reason
        elif reason is not None:  # accepted against the verdict's score (a budget), and why
            decision.fallback_reason = reason
        self.session.flush()
        return True

    def record_rung(
        self,
        request_id: uuid.UUID,
        seq: int,
        *,
        rung: int,
        accept: bool,
        score: float,
        threshold: float,
        reason: str | None,
        executor: Executor | None = None,
        elapsed_ms: float = 0.0,
    ) -> bool:
        """Add the ladder's judgement of rung ``rung``'s result to step ``seq``'s decision, next to
        the judgements of the rungs below it (``ladder_r<k>_*`` scores). A rejection moves the
        decision to ``executor`` (the next rung's role), branch ``verify``, and appends its reason
        to the reasons of earlier climbs, so every escalation of the step stays on record."""
        decision = self.get(request_id, seq)
        if decision is None:
            return False
        scores = dict(decision.scores or {})
        for key, value in (("score", score), ("threshold", threshold)):
            if math.isfinite(value):  # JSON has no infinities (a result without logprobs)
                scores[f"ladder_r{rung}_{key}"] = value
        scores[f"ladder_r{rung}_accept"] = 1.0 if accept else 0.0
        scores["verify_ms"] = float(scores.get("verify_ms", 0.0)) + elapsed_ms
        decision.scores = scores
        if not accept and executor is not None:
            decision.executor = executor
            decision.branch = "verify"
        if reason is not None:
            decision.fallback_reason = f"{decision.fallback_reason}; {reason}" if decision.fallback_reason else reason
        self.session.flush()
        return True

    def get(self, request_id: uuid.UUID, seq: int) -> Decision | None:
        return self.session.scalars(_GET, {"request_id": request_id, "seq": seq}).one_or_none()

    def list_for_request(self, request_id: uuid.UUID) -> Sequence[Decision]:
        return self.session.scalars(
            select(Decision).where(Decision.request_id == request_id).order_by(Decision.seq)
        ).all()
