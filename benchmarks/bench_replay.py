"""Replay speed (SIMULATED): walks per second of the chain replay and the graph replay.

Profiles ``--n`` mixed requests in memory with the simulated backends, then replays them under
several policies (HERA with the hashed test estimators, HERA in cold start, the baselines, the
ladder) and replays graph requests (every step on the simulator once, then reused). Reports the
best of ``--repeat`` timings of each replay. To compare two checkouts, run it under each, in turn,
on the same machine:

    PYTHONPATH=CHECKOUT HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_replay.py --n 200 --repeat 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hera_router.config import RoutingSettings, load_settings
from hera_router.evaluation.graphs import GraphReplayer, GraphTask
from hera_router.evaluation.replay import ProfileSet, Replayer, simulated_extension, simulated_latency
from hera_router.routing.registry import create_policy
from hera_router.simulator.generate import generate
from tests.unit.evaluation.stubs import hashed_estimators, simulated_profile

SEED = 3
POLICIES = ("hera", "all-slm", "all-llm", "random", "hera-ladder")


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--graphs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    profile = simulated_profile(generate("mixed", args.n, SEED), SEED, budget=64)
    estimators = hashed_estimators()
    routing = RoutingSettings(tau_req=0.9)
    cold = RoutingSettings(cold_start=True)
    print(f"chain replay, {len(profile.trees)} requests (SIMULATED), best of {args.repeat}:")
    total = 0.0
    for name in POLICIES:
        replayer = Replayer(profile, estimators)
        policy = create_policy(name, routing)
        seconds = best(args.repeat, lambda policy=policy, replayer=replayer: replayer.run(policy))
        total += seconds
        print(f"  {name:12s} {seconds * 1e3:8.1f} ms  {len(profile.trees) / seconds:9.0f} walks/s")
    replayer = Replayer(profile, None)
    policy = create_policy("hera", cold)
    seconds = best(args.repeat, lambda: replayer.run(policy))
    total += seconds
    print(f"  {'hera (cold)':12s} {seconds * 1e3:8.1f} ms  {len(profile.trees) / seconds:9.0f} walks/s")
    settings = load_settings(simulator={"seed": SEED})
    extension = simulated_extension(settings)
    latency = simulated_latency(settings)
    graphs = GraphReplayer(Replayer(ProfileSet(None, []), estimators, latency=latency, extension=extension))
    tasks = [GraphTask.of(r) for r in generate("graph", args.graphs, SEED)]
    policy = create_policy("hera", routing)
    graphs.run(policy, tasks)  # the first run fills the trees on the simulator
    seconds = best(args.repeat, lambda: graphs.run(policy, tasks))
    total += seconds
    print(f"graph replay, {len(tasks)} graph requests, hera: {seconds * 1e3:8.1f} ms")
    print(f"total {total * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
