"""Simulated calls per second, in process (target: >= 10,000/s on one core).

SIMULATED. What is timed is ``SimBackend.generate`` on realistic agent-loop prompts: the prompts
of whole All-SLM and All-LLM runs over a generated request set, rendered beforehand so that only
the backend is measured (parsing the prompt, replaying the history, deciding, writing the
answer, counting tokens). Every prompt is distinct, so no answer comes from a cache of answers.
A second figure times whole agent loops (rendering and parsing included).

    .venv/bin/python benchmarks/bench_simulator.py [--n 300] [--repeat 5]

Reports the best of ``--repeat`` passes, both per wall-clock second and per CPU second of this
process (``time.process_time``): on a shared, noisy VM the wall-clock figure drops whenever other
processes take the core, while the CPU-time figure is what one core delivers to this process.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable

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
    def timed(run: Callable[[], None]) -> tuple[float, float]:
        """(best wall seconds, best CPU seconds) over the passes."""
        wall, cpu = math.inf, math.inf
        for _ in range(args.repeat):
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            run()
            wall = min(wall, time.perf_counter() - started_wall)
            cpu = min(cpu, time.process_time() - started_cpu)
        return wall, cpu

    def generate_all() -> None:
        for executor, messages in prompts:
            backends[executor].generate(messages, params)

    def loop_all() -> None:
        for task in tasks:
            run_request(task.request, backends, _always("slm"))

    calls = sum(len(run_request(t.request, backends, _always("slm")).steps) for t in tasks)
    gen_wall, gen_cpu = timed(generate_all)
    loop_wall, loop_cpu = timed(loop_all)

    print(f"python {platform.python_version()} on {platform.machine()}, {len(prompts)} distinct prompts")
    print(
        f"SimBackend.generate: {len(prompts) / gen_wall:,.0f} calls/s wall, "
        f"{len(prompts) / gen_cpu:,.0f} calls per CPU-second (best of {args.repeat})"
    )
    print(
        f"in-process agent loop (render + generate + parse): {calls / loop_wall:,.0f} steps/s wall, "
        f"{calls / loop_cpu:,.0f} per CPU-second (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
