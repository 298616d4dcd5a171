"""The execution hop: claim a subtask, make its model call, record output and cost, hand on;
on a backend error: fall back to the cloud, give the step back for a retry, or fail the request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError as DatabaseOperationalError
from sqlalchemy.orm import Session

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.backends.base import BackendError, Generation, GenerationParams, Message, mean_logprob
from hera_router.backends.pricing import bytes_sent, cost_columns, cost_usd, generation_breakdown
from hera_router.config import BackendSettings
from hera_router.db.base import utcnow
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, CallStatus, Executor, SubtaskStatus
from hera_router.db.repositories import DecisionRepository, ModelCallRepository, RequestRepository, SubtaskRepository
from hera_router.db.repositories.hops import claim_and_read, complete_call
from hera_router.metrics import instruments as metrics
from hera_router.pipeline.budgets import BudgetBreach, admit_call
from hera_router.pipeline.progress import hand_on
from hera_router.pipeline.routing import RoutingHop
from hera_router.pipeline.services import MODEL_ROLE_OF, ROLE_OF, Claimed, Services, history
from hera_router.pipeline.tiers import Placement, cheapest_edge_placement, executor_of, next_tier, placement, rung
from hera_router.routing import steps


class ExecutionHop:
    def __init__(self, services: Services, routing: RoutingHop) -> None:
        self.services = services
        self.settings = services.settings
        self.routing = routing

    def run_subtask(
        self, subtask_id: uuid.UUID, executor: Executor, *, final_attempt: bool = True, tier: str | None = None
    ) -> str:
        """Execute one subtask on ``executor``'s backend and hand on. Returns what happened.

        ``final_attempt`` is False while the Celery task still has retries left: a transient
        backend error then propagates (the task retries); on the last attempt the request fails
        with a readable reason instead. An edge failure falls back to the cloud at once.

        The next step of an SLM span (or the next part of a decomposition) runs in this same task,
        on the same executor, instead of a round trip through the broker; its outbox row stays
        unpublished until this process has claimed the step, so if the process dies first the
        relay sends it. The task's retries belong to its first step: a continuation's backend
        error is handled as on a last attempt (fallback or fail).

        ``tier``: the step is on that model tier (``HERA_MODELS``): its backend runs it, and the
        claim takes the step only while it is still on that tier.
        """
        claimed = self._claim(subtask_id, executor, tier=tier)
        first = True
        while not isinstance(claimed, str):
            outcome, continuation = self._execute(claimed, final_attempt=final_attempt or not first)
            if continuation is None:
                return outcome
            message_id, next_id = continuation
            claimed = self._claim(next_id, executor, consumed=(message_id,))
            if isinstance(claimed, str):
                self.services.dispatcher.publish([message_id])  # not ours to run after all
                return outcome
            first = False
        return claimed

    def _execute(self, claimed: Claimed, *, final_attempt: bool) -> tuple[str, tuple[uuid.UUID, uuid.UUID] | None]:
        """The model call of a claimed step and its completion; the continuation to run next."""
        with self.services.liveness.holding(claimed.subtask_id):
            try:
                with self.services.tier_slot(claimed.tier):
                    generation = self.services.backend(ROLE_OF[claimed.executor], claimed.tier).generate(
                        claimed.messages, self._params(claimed)
                    )
            except BackendError as exc:
                return self._on_backend_error(claimed, exc, final_attempt=final_attempt), None
            continuation: list[tuple[uuid.UUID, uuid.UUID]] = []
            self._record(claimed, generation, continuation)
        return "completed", (continuation[-1] if continuation and self.settings.inline_spans else None)

    def _record(
        self, claimed: Claimed, generation: Generation, continuation: list[tuple[uuid.UUID, uuid.UUID]]
    ) -> None:
        """Complete the step with the call's result. The call is made and paid for: if the database
        is away, keep the result and try again with backoff (``HERA_RECORD_RETRY_S`` in all)
        rather than let the task retry make the call a second time."""
        deadline = time.monotonic() + self.settings.record_retry_s
        delay = 0.5
        while True:
            try:
                self.services.publish_after(
                    lambda session: self._complete(session, claimed, generation, continuation),
                    hold=self._inline(continuation),
                )
                return
            except DatabaseOperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                continuation.clear()
                time.sleep(delay)
                delay = min(delay * 2, 8.0)

    def _inline(self, continuation: list[tuple[uuid.UUID, uuid.UUID]]) -> Callable[[], Collection[uuid.UUID]]:
        """The outbox rows ``publish_after`` must hold back: the continuation this task runs itself."""
        if not self.settings.inline_spans:
            return lambda: ()

        def held() -> Collection[uuid.UUID]:
            if not continuation:
                return ()
            return (continuation[-1][0],)

        return held

    def _params(self, claimed: Claimed) -> GenerationParams:
        config = self._config(claimed.executor, claimed.tier)
        return GenerationParams(
            max_new_tokens=config.max_new_tokens, logprobs=config.logprobs, idempotency_key=claimed.call_key
        )

    def _config(self, executor: Executor, tier: str | None) -> BackendSettings:
        if tier is not None:
            return self.settings.tier(tier).backend
        return self.settings.edge if executor is Executor.SLM else self.settings.cloud

    def _claim(
        self,
        subtask_id: uuid.UUID,
        executor: Executor,
        *,
        consumed: Collection[uuid.UUID] = (),
        tier: str | None = None,
    ) -> Claimed | str:
        """One transaction: take the step (guarded), read what its prompt needs, and put the model
        call on record (``started``) before it is made, so a call whose worker dies afterwards is
        still on record, as ``unknown``.

        The backend is resolved before the transaction opens: the first use builds it, which may
        load a model, and the transaction (on SQLite, the process's write lock) must not wait on
        that.
        """
        backend = self.services.backend(ROLE_OF[executor], tier)
        claimed: list[Claimed] = []

        def work(session: Session) -> list[uuid.UUID]:
            subtasks = SubtaskRepository(session)
            stale_before = utcnow() - timedelta(seconds=self.settings.subtask_stale_after_s)
            # The claim, the request's heartbeat and the read of its steps: one statement on Postgres.
            taken = claim_and_read(
                session, subtask_id, executor, stale_before, claimed_by=self.services.liveness.name, tier=tier
            )
            if taken is None:
                return []  # done already, running elsewhere, or the message predates a fallback
            subtask, request, everything = taken
            requests = RequestRepository(session)
            if request is None or request.status in TERMINAL_REQUEST_STATUSES:
                subtasks.transition(subtask_id, [SubtaskStatus.RUNNING], SubtaskStatus.CANCELLED)
                return []
            if subtask.attempts > self.settings.subtask_max_attempts:
                reason = f"step {subtask.seq} gave up after {self.settings.subtask_max_attempts} attempts"
                subtasks.fail(subtask_id, reason)
                requests.fail(subtask.request_id, reason)
                return []
            over = admit_call(session, self.settings, request.tenant_id, cloud=executor is Executor.LLM)
            # A verify re-run under ``cheapest`` keeps its cloud call: moved back to the edge it
            # would only be verified and escalated again.
            if over is not None and not (over.action == "cheapest" and subtask.branch == "verify"):
                return self._over_budget(session, subtask_id, subtask.request_id, subtask.seq, over, tier)
            prior = [(s.subtask, s.result) for s in history(everything, subtask.seq)]
            if subtask.part > 0:
                # A decomposition part sees the parts before it as ordinary history.
                prior += [
                    (s.text, s.output or "") for s in everything if s.seq == subtask.seq and 0 < s.part < subtask.part
                ]
            step_number = subtask.seq + max(subtask.part - 1, 0)
            messages = list(render_step_messages(request.input, prior, subtask.text, step_number))
            too_long = self._beyond_context(messages, tier)
            if too_long is not None:
                return self._climb_for_context(session, subtask, tier, too_long)
            step = Claimed(
                subtask_id=subtask.id,
                request_id=subtask.request_id,
                seq=subtask.seq,
                part=subtask.part,
                attempt=subtask.attempts,
                executor=executor,
                messages=messages,
                escalated=subtask.branch == "verify",
                verify=self.routing.verifies(request.policy, executor, subtask.part, tier),
                tier=tier,
            )
            ModelCallRepository(session).start(
                idempotency_key=step.call_key,
                request_id=step.request_id,
                subtask_id=step.subtask_id,
                backend=backend.name,
                model=backend.model,
                role=MODEL_ROLE_OF[executor],
                estimated_cost_usd=self._estimated_cost(messages, backend.model, executor, tier),
                tier=tier,
                defer=True,  # goes out with the COMMIT (Postgres); a redelivery's duplicate is a no-op
            )
            claimed.append(step)
            # A continuation run in-process: its outbox row counts as delivered.
            self.services.dispatcher.mark_delivered(session, consumed)
            return []

        self.services.publish_after(work)
        return claimed[0] if claimed else "skipped"

    def _over_budget(
        self,
        session: Session,
        subtask_id: uuid.UUID,
        request_id: uuid.UUID,
        seq: int,
        over: BudgetBreach,
        tier: str | None = None,
    ) -> list[uuid.UUID]:
        """The tenant reached a budget before this call: stop the request, or (action ``cheapest``)
        move a cloud step to the edge (on the ladder: to the cheapest edge tier)."""
        subtasks = SubtaskRepository(session)
        target = cheapest_edge_placement(self.settings, tier) if over.action == "cheapest" else None
        # Only a cloud step moves (on a model tier the move is guarded by the tier itself).
        if target is not None and subtasks.move(subtask_id, (Executor.LLM, tier), target):
            where = "the edge" if target[1] is None else f"the edge tier {target[1]}"
            reason = f"{over.message}; ran on {where}"
            DecisionRepository(session).set_fallback(request_id, seq, Executor.SLM, reason)
            return [self.services.queue_run(session, subtask_id, *target)]
        reason = f"stopped before step {seq}: {over.message}"
        subtasks.fail(subtask_id, reason)
        RequestRepository(session).fail(request_id, reason)
        return []

    def _beyond_context(self, messages: list[Message], tier: str | None) -> str | None:
        """Why the tier cannot take this prompt (its context window, ``ModelTier.context_tokens``,
        against the prompt's 4-characters-per-token size plus the step's token limit); None if it
        can, or if there is no rung above to take it instead."""
        if tier is None or next_tier(self.settings, tier) is None:
            return None
        model = self.settings.tier(tier)
        if not model.context_tokens:
            return None
        needed = sum(len(message.content) for message in messages) // 4 + 1 + model.backend.max_new_tokens
        if needed <= model.context_tokens:
            return None
        return (
            f"the prompt needs about {needed} tokens with the answer, "
            f"beyond tier {tier}'s context of {model.context_tokens}"
        )

    def _climb_for_context(self, session: Session, subtask: Any, tier: str | None, why: str) -> list[uuid.UUID]:
        """The cheapest capable rung: a step too long for its tier goes one rung up before any call."""
        assert tier is not None
        up = next_tier(self.settings, tier)
        assert up is not None
        executor = executor_of(up)
        source: Placement = (executor_of(self.settings.tier(tier)), tier)
        if not SubtaskRepository(session).move(subtask.id, source, (executor, up.name)):
            return []
        DecisionRepository(session).set_fallback(
            subtask.request_id, subtask.seq, executor, f"ladder: {why}; ran one rung up on {up.name}"
        )
        return [self.services.queue_run(session, subtask.id, executor, up.name)]

    def _estimated_cost(self, messages: list[Message], model: str, executor: Executor, tier: str | None) -> float:
        """The call's cost at the step's token limit, from a 4-characters-per-token prompt size."""
        role = ROLE_OF[executor]
        config = self._config(executor, tier)
        prompt_tokens = sum(len(message.content) for message in messages) // 4 + 1
        return cost_usd(self.settings, model, prompt_tokens, config.max_new_tokens, 0.0, role)

    def _complete(
        self,
        session: Session,
        claimed: Claimed,
        generation: Generation,
        continuation: list[tuple[uuid.UUID, uuid.UUID]] | None = None,
    ) -> list[uuid.UUID]:
        role = ROLE_OF[claimed.executor]
        breakdown = generation_breakdown(self.settings, generation, role, bytes_sent(claimed.messages))
        cost = breakdown.total
        parsed = parse_step(generation.text)
        # The call was made and is paid for either way. The step counts once, for the attempt
        # whose result the request keeps; another attempt (reclaimed after a stall) may have won,
        # and then this call is on record as ``discarded``, with its cost. The step's result, the
        # call's outcome and the request's totals: one statement on Postgres.
        kept, recorded = complete_call(
            session,
            subtask_id=claimed.subtask_id,
            request_id=claimed.request_id,
            call_key=claimed.call_key,
            executor=claimed.executor,
            output=parsed.result,
            raw_output=generation.text,
            next_subtask=parsed.next_subtask,
            problems=parsed.problems,
            confidence=mean_logprob(generation),
            backend=generation.backend,
            model=generation.model,
            tokens_in=generation.prompt_tokens,
            tokens_out=generation.completion_tokens,
            latency_ms=generation.latency_s * 1e3,
            cost_usd=cost,
            attempts=generation.attempts,
            components=cost_columns(breakdown),
        )
        if recorded:  # False only if this very attempt was completed before (nothing to add)
            all_llm_cost = cost_usd(
                self.settings,
                self.settings.cloud.model,
                generation.prompt_tokens,
                generation.completion_tokens,
                generation.latency_s,
                "cloud",
            )
            metrics.after_commit(
                session,
                lambda: metrics.record_model_call(
                    claimed.executor.value,
                    generation.backend,
                    latency_s=generation.latency_s,
                    tokens_in=generation.prompt_tokens,
                    tokens_out=generation.completion_tokens,
                    cost_usd=cost,
                    all_llm_cost_usd=all_llm_cost,
                    components={
                        "tokens": breakdown.tokens_usd,
                        "gpu": breakdown.gpu_usd,
                        "energy": breakdown.energy_usd,
                        "transfer": breakdown.transfer_usd,
                    },
                    tier=claimed.tier,
                ),
            )
        if not kept:
            return []
        if claimed.verify:
            return [self.services.queue_verify(session, claimed.subtask_id, claimed.tier)]
        return hand_on(self.services, session, claimed, parsed, continuation if self.settings.inline_spans else None)

    def _on_backend_error(self, claimed: Claimed, exc: BackendError, *, final_attempt: bool) -> str:
        here = rung(self.settings, claimed.executor, claimed.tier)
        move = steps.on_backend_error(
            here,
            claimed.part,
            fallback=self.settings.edge_fallback_to_cloud,
            retryable=exc.retryable,
            final_attempt=final_attempt,
        )
        if isinstance(move, steps.Climb):
            target = placement(self.settings, claimed.tier, move.to)
            self.services.publish_after(lambda session: self._climb(session, claimed, target, exc))
            return "fell back to the cloud" if target[1] is None else f"fell back to tier {target[1]}"
        if isinstance(move, steps.GiveBack):
            # Give the step back so the retried task can claim it again, then let Celery retry.
            self._release(claimed, exc)
            raise exc
        reason = f"step {claimed.seq} failed on the {ROLE_OF[claimed.executor]} backend: {exc}"
        self.services.publish_after(lambda session: self._fail(session, claimed, reason, exc))
        return "failed"

    def _record_failed_call(self, session: Session, claimed: Claimed, exc: BackendError) -> None:
        backend = self.services.backend(ROLE_OF[claimed.executor], claimed.tier)
        if ModelCallRepository(session).finish(
            claimed.call_key, status=CallStatus.ERROR, latency_ms=0.0, error=str(exc)
        ):
            metrics.after_commit(session, lambda: metrics.record_failed_call(claimed.executor.value, backend.name))

    def _climb(self, session: Session, claimed: Claimed, target: Placement, exc: BackendError) -> list[uuid.UUID]:
        """An edge rung failed: the step goes one rung up (to the cloud in the two-tier case), and
        the decision says why."""
        if not SubtaskRepository(session).move(claimed.subtask_id, (claimed.executor, claimed.tier), target):
            return []
        self._record_failed_call(session, claimed, exc)
        executor, up = target
        reason = (
            f"edge unavailable, ran on the cloud: {exc}"
            if up is None
            else f"edge tier {claimed.tier} unavailable, ran one rung up on {up}: {exc}"
        )
        DecisionRepository(session).set_fallback(claimed.request_id, claimed.seq, executor, reason)
        metrics.after_commit(session, metrics.FALLBACKS.inc)
        return [self.services.queue_run(session, claimed.subtask_id, *target)]

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
