"""The execution hop: claim a subtask, make its model call, record output and cost, hand on;
on a backend error: fall back to the cloud, give the step back for a retry, or fail the request."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.backends.base import BackendError, Generation, GenerationParams, mean_logprob
from hera_router.backends.pricing import cost_usd, generation_cost
from hera_router.db.base import utcnow
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, CallStatus, Executor, SubtaskStatus
from hera_router.db.repositories import DecisionRepository, ModelCallRepository, RequestRepository, SubtaskRepository
from hera_router.metrics import instruments as metrics
from hera_router.pipeline.progress import hand_on
from hera_router.pipeline.routing import RoutingHop
from hera_router.pipeline.services import MODEL_ROLE_OF, ROLE_OF, Claimed, Services, history


class ExecutionHop:
    def __init__(self, services: Services, routing: RoutingHop) -> None:
        self.services = services
        self.settings = services.settings
        self.routing = routing

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
            generation = self.services.backend(role).generate(claimed.messages, params)
        except BackendError as exc:
            return self._on_backend_error(claimed, exc, final_attempt=final_attempt)
        self.services.publish_after(lambda session: self._complete(session, claimed, generation))
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
            prior = [(s.subtask, s.result) for s in history(everything, subtask.seq)]
            if subtask.part > 0:
                # A decomposition part sees the parts before it as ordinary history.
                prior += [
                    (s.text, s.output or "") for s in everything if s.seq == subtask.seq and 0 < s.part < subtask.part
                ]
            step_number = subtask.seq + max(subtask.part - 1, 0)
            messages = render_step_messages(request.input, prior, subtask.text, step_number)
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
                    verify=self.routing.verifies(request.policy, executor, subtask.part),
                )
            )
            RequestRepository(session).heartbeat(subtask.request_id)
            return []

        self.services.publish_after(work)
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
            return [self.services.queue_verify(session, claimed.subtask_id)]
        return hand_on(self.services, session, claimed, parsed)

    def _on_backend_error(self, claimed: Claimed, exc: BackendError, *, final_attempt: bool) -> str:
        # Any edge failure (down, overloaded, or refusing a prompt too long for the small model)
        # is worth one try on the cloud; decomposed parts have no cloud twin, so they do not.
        fallback = claimed.executor is Executor.SLM and claimed.part == 0 and self.settings.edge_fallback_to_cloud
        if fallback:
            self.services.publish_after(lambda session: self._fall_back(session, claimed, exc))
            return "fell back to the cloud"
        if exc.retryable and not final_attempt:
            # Give the step back so the retried task can claim it again, then let Celery retry.
            self._release(claimed, exc)
            raise exc
        reason = f"step {claimed.seq} failed on the {ROLE_OF[claimed.executor]} backend: {exc}"
        self.services.publish_after(lambda session: self._fail(session, claimed, reason, exc))
        return "failed"

    def _record_failed_call(self, session: Session, claimed: Claimed, exc: BackendError) -> None:
        backend = self.services.backend(ROLE_OF[claimed.executor])
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
        return [self.services.queue_run(session, step)]

    def _release(self, claimed: Claimed, exc: BackendError) -> None:
        def work(session: Session) -> list[uuid.UUID]:
            self._record_failed_call(session, claimed, exc)
            SubtaskRepository(session).transition(claimed.subtask_id, [SubtaskStatus.RUNNING], SubtaskStatus.PENDING)
            return []

        self.services.publish_after(work)

    def _fail(self, session: Session, claimed: Claimed, reason: str, exc: BackendError) -> list[uuid.UUID]:
        self._record_failed_call(session, claimed, exc)
        SubtaskRepository(session).fail(claimed.subtask_id, reason)
        RequestRepository(session).fail(claimed.request_id, reason)
        return []
