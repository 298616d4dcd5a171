"""A minimal in-process agent loop, for calibrating and testing the simulated world.

It speaks the same wire format as the real pipeline (``agent/format.py``) through any
:class:`ModelBackend`, but has no queue, database or estimator: a ``choose`` callback picks the
executor of each step. The production loop lives in the pipeline; this one exists so that the
simulator can be measured on its own, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from hera_router.agent.format import (
    parse_decomposition,
    parse_step,
    render_decompose_messages,
    render_step_messages,
)
from hera_router.backends.base import GenerationParams, ModelBackend

Executor = Literal["slm", "llm"]
Chooser = Callable[[int, str], Executor]
"""(step index, current subtask) → which model runs the step."""
Decider = Callable[[int, str], bool]
"""(step index, current subtask) → whether the SLM runs it as explicit sub-steps."""


@dataclass(frozen=True, slots=True)
class TraceStep:
    step: int
    executor: Executor
    subtask: str
    result: str
    next_subtask: str | None
    final_answer: str | None
    mean_logprob: float
    problems: tuple[str, ...] = ()
    sub_steps: int = 0


@dataclass(frozen=True, slots=True)
class Trace:
    request: str
    steps: tuple[TraceStep, ...]
    final_answer: str | None

    @property
    def finished(self) -> bool:
        return self.final_answer is not None

    @property
    def subtasks(self) -> list[str]:
        """ST_1, ST_2, ...: the chain of generated subtasks (ST_0, the request, left out)."""
        return [step.subtask for step in self.steps[1:]]

    @property
    def slm_share(self) -> float:
        return sum(step.executor == "slm" for step in self.steps) / len(self.steps) if self.steps else 0.0


def _mean_logprob(extra: Mapping[str, str]) -> float:
    try:
        return float(extra.get("mean_logprob", "nan"))
    except ValueError:
        return float("nan")


def run_request(
    request: str,
    backends: Mapping[Executor, ModelBackend],
    choose: Chooser,
    max_steps: int = 15,
    decompose: Decider | None = None,
    params: GenerationParams | None = None,
) -> Trace:
    """Run one request to a final answer (or ``max_steps``); never raises on malformed model output."""
    params = params or GenerationParams()
    history: list[tuple[str, str]] = []
    steps: list[TraceStep] = []
    current = request
    for step in range(max_steps):
        executor = choose(step, current)
        backend = backends[executor]
        sub_steps: list[str] = []
        if executor == "slm" and decompose is not None and step > 0 and decompose(step, current):
            plan = backend.generate(render_decompose_messages(current, request), params)
            sub_steps = parse_decomposition(plan.text)
        if len(sub_steps) > 1:
            # The sub-steps replace the step; their (subtask, result) pairs enter the history so
            # that later steps see how the result was reached, and the last one's answer counts.
            local = list(history)
            for sub_step in sub_steps:
                generation = backend.generate(render_step_messages(request, local, sub_step, step), params)
                output = parse_step(generation.text)
                local.append((sub_step, output.result))
            history = local
        else:
            generation = backend.generate(render_step_messages(request, history, current, step), params)
            output = parse_step(generation.text)
            history.append((current, output.result))
        steps.append(
            TraceStep(
                step=step,
                executor=executor,
                subtask=current,
                result=output.result,
                next_subtask=output.next_subtask,
                final_answer=output.final_answer,
                mean_logprob=_mean_logprob(generation.extra),
                problems=tuple(output.problems),
                sub_steps=len(sub_steps) if len(sub_steps) > 1 else 0,
            )
        )
        if output.final_answer is not None:
            return Trace(request, tuple(steps), output.final_answer)
        if output.next_subtask is None:
            break  # the model neither finished nor said what comes next: the request fails here
        current = output.next_subtask
    return Trace(request, tuple(steps), None)
