"""The router hop: decide who runs the next step (``plan_step``), and the verify stage that keeps
a step's result or re-runs it one rung up (``verify_step``, beyond the paper)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from hera_router.agent.format import parse_step
from hera_router.backends.pricing import cost_usd
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, Executor, RequestStatus, SubtaskStatus
from hera_router.db.models import Subtask
from hera_router.db.repositories import DecisionRepository, RequestRepository, SubtaskRepository
from hera_router.db.repositories.subtasks import RequestState
from hera_router.db.session import session_scope
from hera_router.metrics import instruments as metrics
from hera_router.pipeline.budgets import keep_on_edge, step_limits
from hera_router.pipeline.progress import hand_on
from hera_router.pipeline.services import Claimed, Services, history
from hera_router.pipeline.tiers import Placement, at_rung, placement, rung, step_tier
from hera_router.routing import steps
from hera_router.routing.base import (
    Decision,
    GraphPosition,
    Policy,
    PolicyUnavailableError,
    RoutingContext,
    Step,
    UnknownPolicyError,
    Verdict,
)
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.constraints import StepLimits, constrain
from hera_router.routing.estimators import Estimators

if TYPE_CHECKING:
    from hera_router.training.coldstart import ColdStartSource


class RoutingHop:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self._cold_start_source: ColdStartSource | None = None
        self._cold_start_lock = threading.Lock()

    def cold_start(self) -> ColdStart:
        """The cold-start threshold in force for this process (learned from shadow traffic, or the
        configured default), re-read from the registry every reload interval."""
        with self._cold_start_lock:
            if self._cold_start_source is None:
                from hera_router.training.coldstart import ColdStartSource

                self._cold_start_source = ColdStartSource(self.services.runtime)
            source = self._cold_start_source
        return source()

    def _decide(self, policy: Policy, context: RoutingContext, estimators: Estimators | None) -> Decision:
        """The policy's decision; a policy in cold-start mode gets the threshold in force."""
        cold = self.cold_start() if estimators is None and policy.cold_starts else None
        return steps.decide(policy, context, estimators, cold)

    @staticmethod
    def _current_text(request_input: str, subtasks: Sequence[Row[Any]], seq: int) -> str | None:
        if seq == 0:
            return request_input
        previous = next((s for s in subtasks if s.seq == seq - 1 and s.part == 0), None)
        return previous.next_subtask if previous is not None else None

    def plan_step(self, request_id: uuid.UUID, seq: int) -> Decision | None:
        """Decide who runs step ``seq`` of the request and queue it; None if there was nothing to do.

        Two phases: what the policy needs is read in a read-only transaction (on SQLite it takes
        no write lock), the policy decides outside any transaction (loading the estimators on a
        process's first HERA decision, ~10-20 ms per decision after that), and one short write
        transaction records the decision, the step and its run message. Two copies of the message
        racing each other both decide, but the decision row is unique per (request, step): the
        second copy's insert finds the first and re-queues the first's step (an outbox no-op).
        """
        with session_scope(self.services.runtime.read_sessions) as session:
            request, subtasks = SubtaskRepository(session).request_and_steps(request_id)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES or request.current_seq != seq:
                return None  # finished, or a stale or early message: the request is at another step
            queued, policy_name, text = request.status is RequestStatus.QUEUED, request.policy, request.input
            graph = GraphPosition.from_meta(request.meta)  # a node of a plan with dependencies
            current = self._current_text(text, subtasks, seq)
            steps = tuple(history(subtasks, seq))
            step = next((s for s in subtasks if s.seq == seq and s.part == 0), None)
            first = (
                None if step is None else next((s for s in subtasks if s.parent_id == step.id and s.part == 1), step)
            )
            existing = None if first is None else (first.id, first.executor, first.tier)
            limits = self._limits(session, request, steps, current)
        if existing is not None:
            # Redelivered after the first copy committed (the decision and the step row are written
            # together): its rows and outbox entry exist; re-queueing is a no-op in the outbox.
            self.services.publish_after(lambda session: [self.services.queue_run(session, *existing)])
            return None
        if current is None:
            self._fail(request_id, f"step {seq} has no subtask text: the previous step proposed none")
            return None
        context = RoutingContext(
            request_id=str(request_id),
            request=text,
            current=current,
            seq=seq,
            history=steps,
            max_steps=self.settings.routing.max_steps,
            graph=graph,
        )
        started = time.perf_counter()
        try:
            policy = self.services.policy(policy_name)
            # Only a policy that uses them loads the estimators (a baseline's router stays small).
            estimators = self.services.estimator_source() if policy.needs_estimators else None
            decision = self._decide(policy, context, estimators)
        except (PolicyUnavailableError, UnknownPolicyError) as exc:
            # Not transient: retrying or re-driving would only fail the same way.
            self._fail(request_id, f"step {seq} could not be routed: {exc}")
            return None
        if not decision.elapsed_ms:
            decision = replace(decision, elapsed_ms=(time.perf_counter() - started) * 1e3)
        decision = constrain(at_rung(self.settings, decision), limits)

        def work(session: Session) -> list[uuid.UUID]:
            if queued:
                RequestRepository(session).transition(
                    request_id, [RequestStatus.QUEUED], RequestStatus.RUNNING, count_attempt=True
                )
            return self._apply_decision(session, request_id, seq, current, decision)

        self.services.publish_after(work)
        return decision

    def _limits(
        self, session: Session, request: RequestState, steps: tuple[Step, ...], current: str | None
    ) -> StepLimits:
        """The request's budgets and SLAs for this step (``routing/constraints.py``)."""
        prompt_chars = len(request.input) + len(current or "") + sum(len(s.subtask) + len(s.result) for s in steps)
        cloud_step = cost_usd(
            self.settings,
            self.settings.cloud.model,
            prompt_chars // 4 + 1,
            self.settings.cloud.max_new_tokens,
            0.0,
            "cloud",
        )
        verifies = self.verifies(request.policy, Executor.SLM, 0)
        return step_limits(session, self.settings, request, cloud_step_usd=cloud_step, verifies=verifies)

    def _fail(self, request_id: uuid.UUID, reason: str) -> None:
        def work(session: Session) -> list[uuid.UUID]:
            RequestRepository(session).fail(request_id, reason)
            return []

        self.services.publish_after(work)

    def _apply_decision(
        self, session: Session, request_id: uuid.UUID, seq: int, text: str, decision: Decision
    ) -> list[uuid.UUID]:
        decisions = DecisionRepository(session)
        created = decisions.add(
            request_id=request_id,
            seq=seq,
            policy=decision.policy,
            executor=decision.executor,
            branch=decision.branch,
            span=decision.span,
            scores=dict(decision.scores),
            kappa=decision.kappa,
            estimator_versions=dict(decision.estimator_versions),
            elapsed_ms=decision.elapsed_ms,
            fallback_reason=decision.reason,
        )
        subtasks = SubtaskRepository(session)
        if not created:
            # Another copy of this message decided first: its decision and rows stand.
            step = subtasks.by_key(request_id, seq, 0)
            if step is None:  # pragma: no cover - the decision and the step row commit together
                return []
            head = subtasks.by_key(request_id, seq, 1) or step
            return [self.services.queue_run(session, head.id, head.executor, head.tier)]
        metrics.after_commit(session, lambda: metrics.record_decision(decision))
        tier = step_tier(self.settings, decision)
        step_id, executor = subtasks.add_id(
            request_id=request_id, seq=seq, executor=decision.executor, branch=decision.branch, text=text, tier=tier
        )
        if not decision.parts:
            return [self.services.queue_run(session, step_id, executor, tier)]
        # SD: the parts run in order in place of the step; the step row is their parent. Each on
        # the SLM, or (partial SD) on the executor the decision gave it.
        runs_on = decision.part_executors or (Executor.SLM,) * len(decision.parts)
        first_part: tuple[uuid.UUID, Executor] | None = None
        for number, (part_text, part_executor) in enumerate(zip(decision.parts, runs_on, strict=True), start=1):
            part_id, _ = subtasks.add_id(
                request_id=request_id,
                seq=seq,
                part=number,
                parent_id=step_id,
                executor=part_executor,
                branch=decision.branch,
                text=part_text,
            )
            first_part = first_part or (part_id, part_executor)
        assert first_part is not None
        return [self.services.queue_run(session, *first_part)]

    def verifies(self, policy_name: str, executor: Executor, part: int, tier: str | None = None) -> bool:
        """Whether this step goes to the router's verify stage before the request moves on (decided
        at claim time, from the request the claim has already read): ``routing/steps.verifies``."""
        try:
            policy = self.services.policy(policy_name)
        except UnknownPolicyError:
            return False
        return steps.verifies(policy.verifies, rung(self.settings, executor, tier), part)

    def verify_step(self, subtask_id: uuid.UUID) -> str:
        """Keep a step's result (hand on) or re-run the step one rung up. Returns which.

        One path for every ladder: the two-tier case (no ``HERA_MODELS``: the policy's
        :meth:`~hera_router.routing.base.Policy.verify` judges the SLM's result, a rejection re-runs
        it on the LLM) and model tiers (its :meth:`~hera_router.routing.base.Policy.judge` judges
        the tier's result, a rejection re-runs it one rung up, never skipping one).

        Idempotent: it acts only on a succeeded step below the top rung of a running request still
        at that step; the escalation is a guarded move (succeeded on this rung → pending on the
        next) plus a new run task with its own deterministic id, so a redelivered verify finds
        nothing left to do.
        """
        estimators = self.services.estimator_source()
        outcome: list[str] = []

        def work(session: Session) -> list[uuid.UUID]:
            subtasks = SubtaskRepository(session)
            step = subtasks.get(subtask_id)
            if step is None or step.status is not SubtaskStatus.SUCCEEDED:
                return []
            here = rung(self.settings, step.executor, step.tier)
            if here.top:
                return []  # the top rung is the reference: never judged (a stale message)
            request = RequestRepository(session).state(step.request_id)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES or request.current_seq != step.seq:
                return []
            verdict = self._verdict(subtasks, step, request, here, estimators)
            # A tenant over a budget with action ``cheapest`` keeps the edge's result.
            kept = (
                None if verdict is None or verdict.accept else keep_on_edge(session, self.settings, request.tenant_id)
            )
            climb = steps.after_verdict(verdict, here, kept_by=kept)
            if climb is None:
                if verdict is not None:
                    self._record_verdict(session, step, here, verdict, reason=kept)
                outcome.append("accepted")
                claimed = Claimed(
                    step.id, step.request_id, step.seq, 0, step.attempts, step.executor, [], tier=step.tier
                )
                return hand_on(self.services, session, claimed, parse_step(step.raw_output or step.output or ""))
            assert verdict is not None
            target = placement(self.settings, step.tier, climb.to)
            if not subtasks.move(step.id, (step.executor, step.tier), target, escalate=True):
                return []
            self._record_verdict(session, step, here, verdict, climbed_to=target)
            # The step is counted once, on the rung that keeps it; every call stays in model_calls.
            on_edge = step.executor is Executor.SLM
            RequestRepository(session).add_usage(
                step.request_id, cost_usd=0.0, slm_steps=-int(on_edge), llm_steps=-int(not on_edge)
            )
            outcome.append("escalated")
            return [self.services.queue_run(session, step.id, *target)]

        self.services.publish_after(work)
        return outcome[0] if outcome else "skipped"

    def _verdict(
        self,
        subtasks: SubtaskRepository,
        step: Subtask,
        request: Row[Any],
        here: steps.Rung,
        estimators: Estimators | None,
    ) -> Verdict | None:
        """The policy's judgement of the step's result: ``judge`` on a model tier, ``verify`` (with
        the threshold in force for a cold-starting policy) in the two-tier case."""
        policy = self.services.policy(request.policy)
        if step.tier is not None:
            return policy.judge(here.index, here.rungs, step.confidence)
        context = RoutingContext(
            request_id=str(step.request_id),
            request=request.input,
            current=step.text,
            seq=step.seq,
            history=tuple(history(subtasks.steps_for_request(step.request_id), step.seq)),
            max_steps=self.settings.routing.max_steps,
        )
        cold = self.cold_start() if estimators is None and policy.cold_starts else None
        return steps.verdict(policy, context, step.confidence, estimators, cold)

    def _record_verdict(
        self,
        session: Session,
        step: Subtask,
        here: steps.Rung,
        verdict: Verdict,
        *,
        reason: str | None = None,
        climbed_to: Placement | None = None,
    ) -> None:
        """The verdict on the step's decision: kept (``reason``: why, against the verdict) or
        rejected and re-run on ``climbed_to``; in the two-tier case as the verify stage's scores,
        on a model tier as that rung's (``ladder_r<k>_*``)."""
        decisions = DecisionRepository(session)
        accept = climbed_to is None
        metrics.after_commit(session, lambda: metrics.record_verify(accepted=accept))
        if step.tier is None:
            if climbed_to is not None:
                reason = verdict.reason or (
                    f"verify: the SLM's result scored {verdict.score:.3f} < {verdict.threshold:.3f}; "
                    "re-ran on the cloud"
                )
            decisions.record_verdict(
                step.request_id,
                step.seq,
                accept=accept,
                score=verdict.score,
                threshold=verdict.threshold,
                reason=reason,
                elapsed_ms=verdict.elapsed_ms,
            )
            return
        executor = None
        if climbed_to is not None:
            executor, up = climbed_to
            scored = f"scored {verdict.score:.3f} < {verdict.threshold:.3f}"
            judged = "had no logprobs" if step.confidence is None else scored
            reason = f"ladder: tier {step.tier}'s result {judged}; re-ran one rung up on {up}"
        decisions.record_rung(
            step.request_id,
            step.seq,
            rung=here.index,
            accept=accept,
            score=verdict.score,
            threshold=verdict.threshold,
            executor=executor,
            elapsed_ms=verdict.elapsed_ms,
            reason=reason,
        )
