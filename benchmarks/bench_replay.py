"""Replay speed (SIMULATED): the chain replay's walks per second under several policies, and the
graph replay's, optionally against another checkout's replay module in the same process.

Profiles ``--n`` mixed requests in memory with the simulated backends, then replays them under
HERA (the hashed test estimators), HERA in cold start, the baselines and the ladder, and replays
``--graphs`` graph requests (every step on the simulator once, then reused). Each figure is the best
of ``--repeat`` timings (CPU time). ``--baseline FILE`` loads another version of
``hera_router/training/replay.py`` beside this one (on this checkout's package) and times both in
turn, policy by policy, so the ratio is measured under the same load:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_replay.py --n 200 --repeat 15 \\
        --baseline <another checkout>/hera_router/training/replay.py
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hera_router.config import RoutingSettings, load_settings
from hera_router.evaluation.graphs import GraphReplayer, GraphTask
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import generate
from hera_router.training import replay
from tests.unit.evaluation.stubs import hashed_estimators, simulated_profile

SEED = 3
POLICIES = ("hera", "all-slm", "all-llm", "random", "hera-ladder")


def best(repeat: int, run: Callable[[], object]) -> float:
    """The least CPU time of ``repeat`` runs (process time: a shared machine's other processes
    delay a run's wall clock, not the CPU it uses)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_replay", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_replay"] = module
    spec.loader.exec_module(module)
    return module


def _chains(modules: dict[str, ModuleType], repeat: int, n: int) -> dict[str, dict[str, float]]:
    profile = simulated_profile(generate("mixed", n, SEED), SEED, budget=64)
    estimators = hashed_estimators()
    cases: list[tuple[str, Any, Any]] = [(name, RoutingSettings(tau_req=0.9), estimators) for name in POLICIES]
    cases.append(("hera (cold)", RoutingSettings(cold_start=True), None))
    found: dict[str, dict[str, float]] = {}
    for label, routing, bundle in cases:
        policy = create_policy(label.split()[0], routing)
        found[label] = dict.fromkeys(modules, math.inf)
        for _ in range(repeat):  # in turn, so that both see the same load
            for version, module in modules.items():
                replayer = module.Replayer(profile, bundle)
                found[label][version] = min(found[label][version], best(1, lambda r=replayer, p=policy: r.run(p)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--graphs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline", type=Path, help="another version of hera_router/training/replay.py")
    args = parser.parse_args()
    modules = {"this": replay} | ({"baseline": _load(args.baseline)} if args.baseline else {})
    print(f"chain replay, {args.n} mixed requests (SIMULATED), best of {args.repeat}, ms per replay:")
    found = _chains(modules, args.repeat, args.n)
    print("| policy | " + " | ".join(modules) + (" | this / baseline |" if args.baseline else " |"))
    for label, times in found.items():
        ratio = f" {times['this'] / times['baseline']:.2f} |" if args.baseline else ""
        print(f"| {label} | " + " | ".join(f"{times[v] * 1e3:.1f}" for v in modules) + " |" + ratio)
    if args.baseline:
        this, base = (sum(t[v] for t in found.values()) for v in ("this", "baseline"))
        print(f"| all | {this * 1e3:.1f} | {base * 1e3:.1f} | {this / base:.2f} |")
    settings = load_settings(simulator={"seed": SEED})
    extension = replay.simulated_extension(settings)
    latency = replay.simulated_latency(settings)
    replayer = replay.Replayer(replay.ProfileSet(None, []), hashed_estimators(), latency=latency, extension=extension)
    graphs = GraphReplayer(replayer)
    tasks = [GraphTask.of(r) for r in generate("graph", args.graphs, SEED)]
    policy = create_policy("hera", RoutingSettings(tau_req=0.9))
    graphs.run(policy, tasks)  # the first run fills the trees on the simulator
    seconds = best(args.repeat, lambda: graphs.run(policy, tasks))
    print(f"graph replay (this checkout), {len(tasks)} graph requests, hera: {seconds * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
