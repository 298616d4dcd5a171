"""Simulated calls per second, in process (target: >= 10,000/s on one core).

SIMULATED. What is timed is ``SimBackend.generate`` on realistic agent-loop prompts: the prompts
of whole All-SLM and All-LLM runs over a generated request set, rendered beforehand so that only
the backend is measured (parsing the prompt, replaying the history, deciding, writing the
answer, counting tokens). Every prompt is distinct, so no answer comes from a cache of answers.
A second figure times whole agent loops (rendering and parsing included).

    .venv/bin/python benchmarks/bench_simulator.py [--n 300] [--repeat 5]

Reports the best of ``--repeat`` passes: on a shared, noisy VM the best pass is the one least
disturbed by other processes.
"""

from __future__ import annotations

import argparse
import platform
import time

from hera_router.agent.format import render_step_messages
from hera_router.backends.base import GenerationParams, Message
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import generate_tasks
from hera_router.simulator.loop import Chooser, Executor, run_request


def _always(executor: Executor) -> Chooser:
    def choose(_step: int, _current: str) -> Executor:
        return executor

    return choose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="requests in the generated set")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported")
    args = parser.parse_args()

    backends: dict[Executor, SimBackend] = {"slm": SimBackend("slm", "sim-slm"), "llm": SimBackend("llm", "sim-llm")}
    tasks = generate_tasks(backends["slm"].simulated.world, "mixed", args.n)
    prompts: list[tuple[Executor, list[Message]]] = []
    for task in tasks:
        for executor in backends:
            trace = run_request(task.request, backends, _always(executor))
            history: list[tuple[str, str]] = []
            for step in trace.steps:
                prompts.append((executor, render_step_messages(task.request, history, step.subtask, step.step)))
                history.append((step.subtask, step.result))
    params = GenerationParams()

    # The parse caches of subtask and result texts are warm after the runs above, as they are in
    # a worker, where every history item was the current subtask or the answer of an earlier call.
    best = 0.0
    for _ in range(args.repeat):
        started = time.perf_counter()
        for executor, messages in prompts:
            backends[executor].generate(messages, params)
        best = max(best, len(prompts) / (time.perf_counter() - started))

    loops = 0.0
    calls = sum(len(run_request(t.request, backends, _always("slm")).steps) for t in tasks)
    for _ in range(args.repeat):
        started = time.perf_counter()
        for task in tasks:
            run_request(task.request, backends, _always("slm"))
        loops = max(loops, calls / (time.perf_counter() - started))

    print(f"python {platform.python_version()} on {platform.machine()}, {len(prompts)} distinct prompts")
    print(f"SimBackend.generate: {best:,.0f} calls/s (best of {args.repeat})")
    print(f"in-process agent loop (render + generate + parse): {loops:,.0f} steps/s (best of {args.repeat})")


if __name__ == "__main__":
    main()
