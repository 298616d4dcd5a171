"""Handing on: what happens once a step has a result the request keeps."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from hera_router.agent.format import StepOutput
from hera_router.agent.scoring import score
from hera_router.db.enums import Executor, SubtaskStatus
from hera_router.db.repositories import DecisionRepository, RequestRepository, SubtaskRepository
from hera_router.metrics import instruments as metrics
from hera_router.pipeline import graph
from hera_router.pipeline.names import TaskName, shadow_task_id
from hera_router.pipeline.services import Claimed, Services
from hera_router.routing import steps
from hera_router.routing.base import Decision
from hera_router.training import shadow


def hand_on(
    services: Services,
    session: Session,
    claimed: Claimed,
    parsed: StepOutput,
    continuation: list[tuple[uuid.UUID, uuid.UUID]] | None = None,
) -> list[uuid.UUID]:
    """Move the request on after step ``claimed`` produced ``parsed``: the next part of a
    decomposition, the final answer, the next step of a span, or the router for the next step.

    Returns the outbox rows queued. The next part or span step runs on the SLM, like this one:
    with ``continuation`` given, its ``(outbox row, subtask)`` is appended there, so that the
    execution hop can run it in the same task instead of a round trip through the broker."""
    subtasks = SubtaskRepository(session)
    request_id, seq = claimed.request_id, claimed.seq
    if claimed.part > 0:
        following = subtasks.by_key(request_id, seq, claimed.part + 1)
        parts = claimed.part + 1 if following is not None else claimed.part
        if steps.next_part(claimed.part, parts, answered=parsed.is_final) is not None:
            assert following is not None
            # Partial SD: a part on the other executor goes through the broker, not this task.
            inline = continuation if following.executor is claimed.executor else None
            return _continue(services, session, following.id, inline, following.executor)
        # The last part (or a part that already answered) completes the decomposed step.
        parent = subtasks.by_key(request_id, seq, 0)
        assert parent is not None
        subtasks.transition(parent.id, [SubtaskStatus.PENDING], SubtaskStatus.RUNNING)
        subtasks.succeed(
            parent.id, parsed.result, raw_output=None, next_subtask=parsed.next_subtask, problems=parsed.problems
        )
    end = steps.StepEnd(seq, parsed.result, parsed.final_answer, parsed.next_subtask)
    match steps.after_step(end, services.settings.routing.max_steps):
        case steps.Finish(answer):
            return _finish(services, session, request_id, answer)
        case steps.FanOut(plan):
            # A plan with dependencies: its nodes run as requests of their own (pipeline/graph.py).
            return graph.fan_out(services, session, request_id, seq, plan)
        case steps.Fail(reason):
            RequestRepository(session).fail(request_id, reason)
            return []
        case steps.Next(next_seq, text):
            if not RequestRepository(session).advance_seq(request_id, seq, next_seq):
                return []
            return _next_step(services, session, request_id, seq, text, continuation)
    raise AssertionError("unreachable")  # pragma: no cover - after_step returns one of the four


def _finish(services: Services, session: Session, request_id: uuid.UUID, answer: str) -> list[uuid.UUID]:
    requests = RequestRepository(session)
    if not requests.succeed(request_id, answer):
        return []
    finished = requests.get(request_id)
    if finished is not None and graph.is_node_request(finished):
        return graph.node_finished(services, session, finished, answer)  # the fan-in
    if finished is not None and finished.gold_answer is not None:
        metric = str(finished.meta.get("metric", "entity"))  # evaluation.summary.DEFAULT_METRIC
        quality = score(metric, answer, finished.gold_answer)
        metrics.after_commit(session, lambda: metrics.record_gold_score(finished.policy, quality))
    return _queue_shadow(services, session, request_id)


def _next_step(
    services: Services,
    session: Session,
    request_id: uuid.UUID,
    seq: int,
    text: str,
    continuation: list[tuple[uuid.UUID, uuid.UUID]] | None,
) -> list[uuid.UUID]:
    """Step ``seq + 1`` (the request is already there): inside a span it runs on the SLM without
    routing, otherwise the router decides."""
    decisions = DecisionRepository(session)
    decision = decisions.get(request_id, seq)
    if decision is not None and steps.continues_span(decision.span, interrupted=decision.fallback_reason is not None):
        # Still inside a span (SLE/CD/URC): the next step runs on the SLM without routing.
        created = decisions.add(
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
        step_id, executor = SubtaskRepository(session).add_id(
            request_id=request_id,
            seq=seq + 1,
            executor=Executor.SLM,
            branch=decision.branch,
            text=text,
        )
        if executor is not Executor.SLM:  # an earlier copy's row that fell back since
            return [services.queue_run(session, step_id, executor)]
        return _continue(services, session, step_id, continuation)
    return [services.queue_plan(session, request_id, seq + 1)]


def _continue(
    services: Services,
    session: Session,
    subtask_id: uuid.UUID,
    continuation: list[tuple[uuid.UUID, uuid.UUID]] | None,
    executor: Executor = Executor.SLM,
) -> list[uuid.UUID]:
    message_id = services.queue_run(session, subtask_id, executor)
    if continuation is not None:
        continuation.append((message_id, subtask_id))
    return [message_id]


def _queue_shadow(services: Services, session: Session, request_id: uuid.UUID) -> list[uuid.UUID]:
    """A sampled finished request is re-run as a profiling tree on the training queue (shadow
    labels for continual fine-tuning, ``training/shadow.py``); queued with the success, so
    the user's answer never waits for it."""
    if not shadow.sampled(request_id, services.settings.continual.shadow_rate):
        return []
    kwargs = {"request_id": str(request_id)}
    return [services.dispatcher.enqueue(session, TaskName.SHADOW_REQUEST, kwargs, shadow_task_id(request_id))]
