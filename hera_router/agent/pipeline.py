"""The agent pipeline's services: plan a step, run a subtask, re-drive what stalled.

The Celery tasks in ``hera_router.tasks`` are thin wrappers around these methods. Every method is
idempotent: it starts from what the database says, changes state only through guarded
transitions, and queues its next hop through the outbox in the same transaction, so a redelivered,
duplicated or re-driven message finds nothing left to do and charges nothing twice.

Step life cycle (ARCHITECTURE.md §5)::

    plan_step(request, seq)      policy decides -> decision row + subtask row(s) -> run_subtask
    run_subtask(subtask, exec)   model call -> output + cost -> finish, next step in the span,
                                 next part of a decomposition, or plan_step(seq + 1)

Spans: a decision covering ``span`` steps is copied onto each covered step with the span that is
left (``span - 1``, ...), so every step has exactly one decision row and the execution task only
needs to look at the decision of the step it just ran.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.orm import Session

from hera_router.agent.format import StepOutput, parse_step, render_step_messages
from hera_router.agent.scoring import score
from hera_router.backends.base import (
    BackendError,
    BackendRole,
    Generation,
    GenerationParams,
    Message,
    ModelBackend,
    mean_logprob,
)
from hera_router.backends.pricing import cost_usd, generation_cost
from hera_router.config import Settings
from hera_router.db.base import utcnow
from hera_router.db.enums import (
    TERMINAL_REQUEST_STATUSES,
    CallStatus,
    Executor,
    ModelRole,
    RequestStatus,
    SubtaskStatus,
)
from hera_router.db.models import Request, Subtask
from hera_router.db.repositories import (
    DecisionRepository,
    ModelCallRepository,
    OutboxRepository,
    RequestRepository,
    SubtaskRepository,
)
from hera_router.db.session import session_scope
from hera_router.routing.base import (
    Decision,
    Policy,
    PolicyUnavailableError,
    RoutingContext,
    Step,
    UnknownPolicyError,
)
from hera_router.routing.estimators import Estimators
from hera_router.routing.registry import create_policy
from hera_router.training import shadow
from hera_router.workers import metrics
from hera_router.workers.dispatch import Dispatcher
from hera_router.workers.runtime import Runtime

log = logging.getLogger(__name__)

PLAN_TASK = "routing.plan_step"
VERIFY_TASK = "routing.verify_step"
RUN_TASK = "execution.run_subtask"

ROLE_OF: dict[Executor, BackendRole] = {Executor.SLM: "edge", Executor.LLM: "cloud"}
MODEL_ROLE_OF: dict[Executor, ModelRole] = {Executor.SLM: ModelRole.EDGE, Executor.LLM: ModelRole.CLOUD}


def plan_task_id(request_id: uuid.UUID, seq: int) -> str:
    """Deterministic Celery task id of the router hop for (request, step)."""
    return f"plan:{request_id}:{seq}"


def verify_task_id(subtask_id: uuid.UUID) -> str:
    """Deterministic Celery task id of the verify hop of an SLM step."""
    return f"verify:{subtask_id}"


def run_task_id(subtask_id: uuid.UUID, executor: Executor) -> str:
    """Deterministic Celery task id of the execution hop; the executor is part of it because a
    fallback re-sends the same subtask to the other queue."""
    return f"run:{subtask_id}:{executor.value}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claimed subtask needs for its model call, read inside the claiming transaction."""

    subtask_id: uuid.UUID
    request_id: uuid.UUID
    seq: int
    part: int
    attempt: int
    executor: Executor
    messages: list[Message]
    escalated: bool = False
    """The LLM re-run of a step whose SLM result the verify stage rejected."""
    verify: bool = False
    """An SLM step of a policy with a verify stage: completing it queues the verify hop."""


BackendFactory = Callable[[Settings, BackendRole], ModelBackend]


def _default_backend_factory(settings: Settings, role: BackendRole) -> ModelBackend:
    from hera_router.backends.registry import create_backend

    return create_backend(settings, role)


EstimatorSource = Callable[[], Estimators | None]


def _no_estimators() -> Estimators | None:
    return None


class Pipeline:
    """The services behind the router, execution and maintenance tasks of one process."""

    def __init__(
        self,
        runtime: Runtime,
        dispatcher: Dispatcher,
        *,
        backend_factory: BackendFactory = _default_backend_factory,
        estimator_source: EstimatorSource = _no_estimators,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.dispatcher = dispatcher
        self._backend_factory = backend_factory
        # Called for every decision, so a newly promoted estimator version is picked up by a
        # running router without a restart (the source caches and checks the registry itself).
        self._estimator_source = estimator_source
        self._backends: dict[BackendRole, ModelBackend] = {}
        self._policies: dict[str, Policy] = {}
        self._lock = threading.Lock()

    # -- shared pieces -------------------------------------------------------------------------

    def backend(self, role: BackendRole) -> ModelBackend:
        """The process's backend for ``role``, built on first use (after the worker forked)."""
        with self._lock:
            if role not in self._backends:
                self._backends[role] = self._backend_factory(self.settings, role)
            return self._backends[role]

    def policy(self, name: str) -> Policy:
        with self._lock:
            if name not in self._policies:
                self._policies[name] = create_policy(name, self.settings.routing)
            return self._policies[name]

    def _publish_after(self, work: Callable[[Session], list[uuid.UUID]]) -> list[uuid.UUID]:
        """Run ``work`` in one transaction, then publish the outbox rows it queued."""
        with session_scope(self.runtime.sessions) as session:
            queued = work(session)
        self.dispatcher.publish(queued)
        return queued

    @staticmethod
    def _history(subtasks: list[Subtask], before_seq: int) -> list[Step]:
        return [
            Step(subtask=s.text, result=s.output or "", executor=s.executor, confidence=s.confidence)
            for s in subtasks
            if s.part == 0 and s.seq < before_seq and s.status is SubtaskStatus.SUCCEEDED
        ]

    def _current_text(self, request: Request, subtasks: list[Subtask], seq: int) -> str | None:
        if seq == 0:
            return request.input
        previous = next((s for s in subtasks if s.seq == seq - 1 and s.part == 0), None)
        return previous.next_subtask if previous is not None else None

    # -- routing.plan_step -----------------------------------------------------------------------

    def plan_step(self, request_id: uuid.UUID, seq: int) -> Decision | None:
        """Decide who runs step ``seq`` of the request and queue it; None if there was nothing to do."""
        decided: list[Decision] = []
        # Outside the transaction: loading or refreshing estimators must not hold database locks.
        estimators = self._estimator_source()

        def work(session: Session) -> list[uuid.UUID]:
            requests = RequestRepository(session)
            request = requests.get(request_id)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES:
                return []
            if request.status is RequestStatus.QUEUED:
                requests.transition(request_id, [RequestStatus.QUEUED], RequestStatus.RUNNING, count_attempt=True)
            if request.current_seq != seq:
                return []  # a stale or early message: the request is at another step
            subtasks = list(SubtaskRepository(session).list_for_request(request_id))
            existing = DecisionRepository(session).get(request_id, seq)
            if existing is not None:
                # Redelivered after the first copy committed: its rows and outbox entry exist.
                step = next((s for s in subtasks if s.seq == seq and s.part == 0), None)
                return [self._queue_run(session, step)] if step is not None else []
            current = self._current_text(request, subtasks, seq)
            if current is None:
                requests.fail(request_id, f"step {seq} has no subtask text: the previous step proposed none")
                return []
            context = RoutingContext(
                request_id=str(request_id),
                request=request.input,
                current=current,
                seq=seq,
                history=tuple(self._history(subtasks, seq)),
                max_steps=self.settings.routing.max_steps,
            )
            started = time.perf_counter()
            try:
                decision = self.policy(request.policy).decide(context, estimators)
            except (PolicyUnavailableError, UnknownPolicyError) as exc:
                # Not transient: retrying or re-driving would only fail the same way.
                requests.fail(request_id, f"step {seq} could not be routed: {exc}")
                return []
            if not decision.elapsed_ms:
                decision = replace(decision, elapsed_ms=(time.perf_counter() - started) * 1e3)
            decided.append(decision)
            return self._apply_decision(session, request_id, seq, current, decision)

        self._publish_after(work)
        return decided[0] if decided else None

    def _apply_decision(
        self, session: Session, request_id: uuid.UUID, seq: int, text: str, decision: Decision
    ) -> list[uuid.UUID]:
        _, created = DecisionRepository(session).record(
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
        )
        if created:
            metrics.after_commit(session, lambda: metrics.record_decision(decision))
        subtasks = SubtaskRepository(session)
        step, _ = subtasks.add(
            request_id=request_id, seq=seq, executor=decision.executor, branch=decision.branch, text=text
        )
        if not decision.parts:
            return [self._queue_run(session, step)]
        # SD: the SLM runs the parts in order in place of the step; the step row is their parent.
        first = None
        for number, part_text in enumerate(decision.parts, start=1):
            part, _ = subtasks.add(
                request_id=request_id,
                seq=seq,
                part=number,
                parent_id=step.id,
                executor=Executor.SLM,
                branch=decision.branch,
                text=part_text,
            )
            first = first or part
        assert first is not None
        return [self._queue_run(session, first)]

    def _queue_run(self, session: Session, subtask: Subtask | None) -> uuid.UUID:
        assert subtask is not None
        kwargs = {"subtask_id": str(subtask.id), "executor": subtask.executor.value}
        return self.dispatcher.enqueue(session, RUN_TASK, kwargs, run_task_id(subtask.id, subtask.executor))

    def _queue_plan(self, session: Session, request_id: uuid.UUID, seq: int) -> uuid.UUID:
        kwargs = {"request_id": str(request_id), "seq": seq}
        return self.dispatcher.enqueue(session, PLAN_TASK, kwargs, plan_task_id(request_id, seq))

    # -- execution.run_subtask -------------------------------------------------------------------

    def run_subtask(self, subtask_id: uuid.UUID, executor: Executor, *, final_attempt: bool = True) -> str:
        """Execute one subtask on ``executor``'s backend and hand on. Returns what happened.

        ``final_attempt`` is False while the Celery task still has retries left: a transient
        backend error then propagates (the task retries); on the last attempt the request fails
        with a readable reason instead. An edge failure falls back to the cloud at once.
        """
        claimed = self._claim(subtask_id, executor)
        if isinstance(claimed, str):
            return claimed
        role = ROLE_OF[executor]
        config = self.settings.edge if role == "edge" else self.settings.cloud
        params = GenerationParams(max_new_tokens=config.max_new_tokens, logprobs=config.logprobs)
        try:
            generation = self.backend(role).generate(claimed.messages, params)
        except BackendError as exc:
            return self._on_backend_error(claimed, exc, final_attempt=final_attempt)
        self._publish_after(lambda session: self._complete(session, claimed, generation))
        return "completed"

    def _claim(self, subtask_id: uuid.UUID, executor: Executor) -> Claimed | str:
        claimed: list[Claimed] = []

        def work(session: Session) -> list[uuid.UUID]:
            subtasks = SubtaskRepository(session)
            subtask = subtasks.get(subtask_id)
            if subtask is None:
                return []
            request = RequestRepository(session).get(subtask.request_id)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES:
                subtasks.transition(subtask_id, [SubtaskStatus.PENDING], SubtaskStatus.CANCELLED)
                return []
            if subtask.executor is not executor:
                return []  # this message predates a fallback to the other executor
            stale_before = utcnow() - timedelta(seconds=self.settings.subtask_stale_after_s)
            if not (
                subtasks.transition(subtask_id, [SubtaskStatus.PENDING], SubtaskStatus.RUNNING, count_attempt=True)
                or subtasks.reclaim_stale(subtask_id, stale_before)
            ):
                return []  # done already, or running elsewhere right now
            if subtask.attempts + 1 > self.settings.subtask_max_attempts:
                reason = f"step {subtask.seq} gave up after {self.settings.subtask_max_attempts} attempts"
                subtasks.fail(subtask_id, reason)
                RequestRepository(session).fail(subtask.request_id, reason)
                return []
            everything = list(subtasks.list_for_request(subtask.request_id))
            history = [(s.subtask, s.result) for s in self._history(everything, subtask.seq)]
            if subtask.part > 0:
                # A decomposition part sees the parts before it as ordinary history.
                history += [
                    (s.text, s.output or "")
                    for s in everything
                    if s.seq == subtask.seq and 0 < s.part < subtask.part
                ]
            step_number = subtask.seq + max(subtask.part - 1, 0)
            messages = render_step_messages(request.input, history, subtask.text, step_number)
            claimed.append(
                Claimed(
                    subtask_id=subtask.id,
                    request_id=subtask.request_id,
                    seq=subtask.seq,
                    part=subtask.part,
                    attempt=subtask.attempts + 1,
                    executor=executor,
                    messages=list(messages),
                    escalated=subtask.branch == "verify",
                    verify=self._verifies(request.policy, executor, subtask.part),
                )
            )
            RequestRepository(session).heartbeat(subtask.request_id)
            return []

        self._publish_after(work)
        return claimed[0] if claimed else "skipped"

    def _complete(self, session: Session, claimed: Claimed, generation: Generation) -> list[uuid.UUID]:
        parsed = parse_step(generation.text)
        subtasks = SubtaskRepository(session)
        if not subtasks.succeed(
            claimed.subtask_id,
            parsed.result,
            raw_output=generation.text,
            next_subtask=parsed.next_subtask,
            problems=parsed.problems,
            confidence=mean_logprob(generation),
        ):
            return []  # another copy finished it first; it recorded the call and the cost
        role = ROLE_OF[claimed.executor]
        cost = generation_cost(self.settings, generation, role)
        _, created = ModelCallRepository(session).record(
            # The verify stage's LLM re-run is a second call for the same subtask, keyed apart.
            idempotency_key=f"call:{claimed.subtask_id}" + (":verify" if claimed.escalated else ""),
            request_id=claimed.request_id,
            subtask_id=claimed.subtask_id,
            backend=generation.backend,
            model=generation.model,
            role=MODEL_ROLE_OF[claimed.executor],
            tokens_in=generation.prompt_tokens,
            tokens_out=generation.completion_tokens,
            latency_ms=generation.latency_s * 1e3,
            cost_usd=cost,
            attempts=generation.attempts,
        )
        if created:
            all_llm_cost = cost_usd(
                self.settings, self.settings.cloud.model, generation.prompt_tokens, generation.completion_tokens,
                generation.latency_s, "cloud",
            )  # fmt: skip
            metrics.after_commit(
                session,
                lambda: metrics.record_model_call(
                    claimed.executor.value, generation.backend, latency_s=generation.latency_s,
                    tokens_in=generation.prompt_tokens, tokens_out=generation.completion_tokens,
                    cost_usd=cost, all_llm_cost_usd=all_llm_cost,
                ),
            )  # fmt: skip
            RequestRepository(session).add_usage(
                claimed.request_id,
                cost_usd=cost,
                slm_steps=int(claimed.executor is Executor.SLM),
                llm_steps=int(claimed.executor is Executor.LLM),
            )
        if claimed.verify:
            return [self._queue_verify(session, claimed.subtask_id)]
        return self._hand_on(session, claimed, parsed)

    # -- routing.verify_step (beyond the paper) --------------------------------------------------

    def _verifies(self, policy_name: str, executor: Executor, part: int) -> bool:
        """Whether this SLM step goes to the router's verify stage before the request moves on
        (decided at claim time, from the request the claim has already read)."""
        if executor is not Executor.SLM or part > 0:
            return False  # LLM steps are the reference; decomposition parts are judged as SD's
        try:
            policy = self.policy(policy_name)
        except UnknownPolicyError:
            return False
        return bool(getattr(policy, "verifies", False))

    def _queue_verify(self, session: Session, subtask_id: uuid.UUID) -> uuid.UUID:
        kwargs = {"subtask_id": str(subtask_id)}
        return self.dispatcher.enqueue(session, VERIFY_TASK, kwargs, verify_task_id(subtask_id))

    def verify_step(self, subtask_id: uuid.UUID) -> str:
        """Accept an SLM step's result (hand on) or re-run the step on the LLM. Returns which.

        Idempotent: it acts only on a succeeded SLM step of a running request still at that step;
        the escalation is a guarded move (succeeded on the SLM → pending on the LLM) plus a new run
        task with its own deterministic id, so a redelivered verify finds nothing left to do.
        """
        estimators = self._estimator_source()
        outcome: list[str] = []

        def work(session: Session) -> list[uuid.UUID]:
            subtasks = SubtaskRepository(session)
            step = subtasks.get(subtask_id)
            if step is None or step.status is not SubtaskStatus.SUCCEEDED or step.executor is not Executor.SLM:
                return []
            requests = RequestRepository(session)
            request = requests.get(step.request_id)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES or request.current_seq != step.seq:
                return []
            everything = list(subtasks.list_for_request(step.request_id))
            context = RoutingContext(
                request_id=str(step.request_id),
                request=request.input,
                current=step.text,
                seq=step.seq,
                history=tuple(self._history(everything, step.seq)),
                max_steps=self.settings.routing.max_steps,
            )
            verify = getattr(self.policy(request.policy), "verify", None)
            verdict = verify(context, step.confidence, estimators) if verify is not None else None
            claimed = Claimed(step.id, step.request_id, step.seq, 0, step.attempts, Executor.SLM, [])
            decisions = DecisionRepository(session)
            if verdict is None or verdict.accept:
                if verdict is not None:
                    decisions.record_verdict(
                        step.request_id, step.seq, accept=True, score=verdict.score,
                        threshold=verdict.threshold, reason=None, elapsed_ms=verdict.elapsed_ms,
                    )  # fmt: skip
                outcome.append("accepted")
                if verdict is not None:
                    metrics.after_commit(session, lambda: metrics.record_verify(accepted=True))
                parsed = parse_step(step.raw_output or step.output or "")
                return self._hand_on(session, claimed, parsed)
            if not subtasks.escalate(step.id):
                return []
            decisions.record_verdict(
                step.request_id,
                step.seq,
                accept=False,
                score=verdict.score,
                threshold=verdict.threshold,
                elapsed_ms=verdict.elapsed_ms,
                reason=(
                    f"verify: the SLM's result scored {verdict.score:.3f} < {verdict.threshold:.3f}; "
                    "re-ran on the cloud"
                ),
            )
            # The step is counted once, on the LLM; the SLM call stays in model_calls with its cost.
            requests.add_usage(step.request_id, cost_usd=0.0, slm_steps=-1)
            metrics.after_commit(session, lambda: metrics.record_verify(accepted=False))
            outcome.append("escalated")
            return [self._queue_run(session, subtasks.get(step.id))]

        self._publish_after(work)
        return outcome[0] if outcome else "skipped"

    def _hand_on(self, session: Session, claimed: Claimed, parsed: StepOutput) -> list[uuid.UUID]:
        subtasks = SubtaskRepository(session)
        requests = RequestRepository(session)
        request_id, seq = claimed.request_id, claimed.seq
        if claimed.part > 0:
            following = subtasks.by_key(request_id, seq, claimed.part + 1)
            if following is not None and not parsed.is_final:
                return [self._queue_run(session, following)]
            # The last part (or a part that already answered) completes the decomposed step.
            parent = subtasks.by_key(request_id, seq, 0)
            assert parent is not None
            subtasks.transition(parent.id, [SubtaskStatus.PENDING], SubtaskStatus.RUNNING)
            subtasks.succeed(
                parent.id, parsed.result, raw_output=None, next_subtask=parsed.next_subtask, problems=parsed.problems
            )
        if parsed.is_final or parsed.next_subtask is None:
            # No next subtask and no final answer: the parser recorded the problem; the result is
            # the best answer there is, and looping on a step that proposes nothing cannot help.
            answer = parsed.final_answer if parsed.final_answer is not None else parsed.result
            shadow_run: list[uuid.UUID] = []
            if requests.succeed(request_id, answer):
                finished = requests.get(request_id)
                if finished is not None and finished.gold_answer is not None:
                    metric = str(finished.meta.get("metric", "entity"))  # evaluation.summary.DEFAULT_METRIC
                    quality = score(metric, answer, finished.gold_answer)
                    metrics.after_commit(session, lambda: metrics.record_gold_score(finished.policy, quality))
                shadow_run = self._queue_shadow(session, request_id)
            return shadow_run
        if seq + 1 >= self.settings.routing.max_steps:
            requests.fail(
                request_id,
                f"stopped after {self.settings.routing.max_steps} steps without a final answer "
                "(HERA_ROUTING__MAX_STEPS)",
            )
            return []
        if not requests.advance_seq(request_id, seq, seq + 1):
            return []
        decisions = DecisionRepository(session)
        decision = decisions.get(request_id, seq)
        if decision is not None and decision.span > 1 and decision.fallback_reason is None:
            # Still inside a span (SLE/CD/URC): the next step runs on the SLM without routing.
            _, created = decisions.record(
                request_id=request_id,
                seq=seq + 1,
                policy=decision.policy,
                executor=Executor.SLM,
                branch=decision.branch,
                span=decision.span - 1,
                scores={"span_origin": decision.scores.get("span_origin", seq)},
                kappa=decision.kappa,
                estimator_versions=decision.estimator_versions,
                elapsed_ms=0.0,
            )
            if created:
                continued = Decision(executor=Executor.SLM, branch=decision.branch, policy=decision.policy)
                metrics.after_commit(session, lambda: metrics.record_decision(continued, routed=False))
            step, _ = subtasks.add(
                request_id=request_id, seq=seq + 1, executor=Executor.SLM, branch=decision.branch,
                text=parsed.next_subtask,
            )  # fmt: skip
            return [self._queue_run(session, step)]
        return [self._queue_plan(session, request_id, seq + 1)]

    def _queue_shadow(self, session: Session, request_id: uuid.UUID) -> list[uuid.UUID]:
        """A sampled finished request is re-run as a profiling tree on the training queue (shadow
        labels for continual fine-tuning, ``training/shadow.py``); queued with the success, so
        the user's answer never waits for it."""
        if not shadow.sampled(request_id, self.settings.continual.shadow_rate):
            return []
        kwargs = {"request_id": str(request_id)}
        return [self.dispatcher.enqueue(session, shadow.SHADOW_TASK, kwargs, shadow.shadow_task_id(request_id))]

    def _on_backend_error(self, claimed: Claimed, exc: BackendError, *, final_attempt: bool) -> str:
        # Any edge failure (down, overloaded, or refusing a prompt too long for the small model)
        # is worth one try on the cloud; decomposed parts have no cloud twin, so they do not.
        fallback = claimed.executor is Executor.SLM and claimed.part == 0 and self.settings.edge_fallback_to_cloud
        if fallback:
            self._publish_after(lambda session: self._fall_back(session, claimed, exc))
            return "fell back to the cloud"
        if exc.retryable and not final_attempt:
            # Give the step back so the retried task can claim it again, then let Celery retry.
            self._release(claimed, exc)
            raise exc
        reason = f"step {claimed.seq} failed on the {ROLE_OF[claimed.executor]} backend: {exc}"
        self._publish_after(lambda session: self._fail(session, claimed, reason, exc))
        return "failed"

    def _record_failed_call(self, session: Session, claimed: Claimed, exc: BackendError) -> None:
        backend = self.backend(ROLE_OF[claimed.executor])
        _, created = ModelCallRepository(session).record(
            idempotency_key=f"call:{claimed.subtask_id}:failed:{claimed.executor.value}:{claimed.attempt}",
            request_id=claimed.request_id,
            subtask_id=claimed.subtask_id,
            backend=backend.name,
            model=backend.model,
            role=MODEL_ROLE_OF[claimed.executor],
            latency_ms=0.0,
            status=CallStatus.ERROR,
            error=str(exc),
        )
        if created:
            metrics.after_commit(session, lambda: metrics.record_failed_call(claimed.executor.value, backend.name))

    def _fall_back(self, session: Session, claimed: Claimed, exc: BackendError) -> list[uuid.UUID]:
        subtasks = SubtaskRepository(session)
        if not subtasks.reassign(claimed.subtask_id, Executor.SLM, Executor.LLM):
            return []
        self._record_failed_call(session, claimed, exc)
        DecisionRepository(session).set_fallback(
            claimed.request_id, claimed.seq, Executor.LLM, f"edge unavailable, ran on the cloud: {exc}"
        )
        metrics.after_commit(session, metrics.FALLBACKS.inc)
        step = subtasks.get(claimed.subtask_id)
        return [self._queue_run(session, step)]

    def _release(self, claimed: Claimed, exc: BackendError) -> None:
        def work(session: Session) -> list[uuid.UUID]:
            self._record_failed_call(session, claimed, exc)
            SubtaskRepository(session).transition(claimed.subtask_id, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING)
            return []

        self._publish_after(work)

    def _fail(self, session: Session, claimed: Claimed, reason: str, exc: BackendError) -> list[uuid.UUID]:
        self._record_failed_call(session, claimed, exc)
        SubtaskRepository(session).fail(claimed.subtask_id, reason)
        RequestRepository(session).fail(claimed.request_id, reason)
        return []

    # -- maintenance -----------------------------------------------------------------------------

    def relay(self, limit: int = 500) -> int:
        return self.dispatcher.relay(limit)

    def reconcile(self, limit: int = 200) -> int:
        """Re-drive active requests that made no progress within the deadline; returns how many.

        The broker may have lost a message, or a worker died holding one: the database says which
        hop is missing; that hop's outbox row is re-opened and published again (and left to the
        relay if publishing fails).
        """
        reopened: list[uuid.UUID] = []
        cutoff = utcnow() - timedelta(seconds=self.settings.reconcile_after_s)
        with session_scope(self.runtime.sessions) as session:
            requests = RequestRepository(session)
            subtasks = SubtaskRepository(session)
            outbox = OutboxRepository(session)
            for request in requests.stale(cutoff, limit):
                requests.heartbeat(request.id)
                seq = request.current_seq
                open_parts = [
                    s for s in subtasks.list_for_request(request.id)
                    if s.seq == seq and s.status in (SubtaskStatus.PENDING, SubtaskStatus.RUNNING)
                    and not (s.part == 0 and subtasks.has_parts(s.id))
                ]  # fmt: skip
                waiting = next(
                    (s for s in subtasks.list_for_request(request.id)
                     if s.seq == seq and s.part == 0 and s.status is SubtaskStatus.SUCCEEDED),
                    None,
                )  # fmt: skip
                if not open_parts and waiting is not None:
                    # Succeeded but the request did not move on: its verify hop was lost.
                    kwargs: dict[str, object] = {"subtask_id": str(waiting.id)}
                    reopened.append(outbox.reopen(VERIFY_TASK, kwargs, verify_task_id(waiting.id)).id)
                elif not open_parts:
                    kwargs = {"request_id": str(request.id), "seq": seq}
                    reopened.append(outbox.reopen(PLAN_TASK, kwargs, plan_task_id(request.id, seq)).id)
                else:
                    step = open_parts[0]
                    if step.status is SubtaskStatus.RUNNING:
                        subtasks.transition(step.id, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING)
                    kwargs = {"subtask_id": str(step.id), "executor": step.executor.value}
                    reopened.append(outbox.reopen(RUN_TASK, kwargs, run_task_id(step.id, step.executor)).id)
                log.warning("re-driving request %s at step %s (no progress since %s)", request.id, seq, cutoff)
        if reopened:
            metrics.REDRIVES.inc(len(reopened))
            # Published now rather than by the relay: nobody else is publishing these rows, and
            # the relay's grace period would hold them back for nothing.
            self.dispatcher.publish(reopened)
        return len(reopened)


