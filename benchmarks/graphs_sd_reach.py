"""Partial vs all-or-nothing SD where SD is actually reached (SIMULATED).

At their calibrated operating point (κ base 0.0) ``hera`` and ``hera-paper`` pass almost every
step by SSE, so SD is never reached and the two SD modes route identically (`eval graphs`,
`eval matrix`). This replays the SD pairs with the calibration's κ base raised (position κ), so
that SSE fails more often and SD decides, on the graph and chain sets of `eval graphs`, using a
world folder that `eval matrix` / `eval graphs` bootstrapped (nothing is trained here).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/graphs_sd_reach.py --workdir WORLDS -w default -s 0 \
        --kappa-base 0.75 --kappa-base 0.9 --output benchmarks/results/graphs-sd-reach.md
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from hera_router.config import load_settings
from hera_router.db.runtime import Runtime
from hera_router.estimators.loader import RegistryEstimatorSource
from hera_router.evaluation.graphs import SD_POLICIES, GraphReplayer, graph_tasks, policy_at, replay_graphs, sd_row
from hera_router.evaluation.worlds import WorldTraining, world_settings
from hera_router.training.replay import ProfileSet, Replayer, simulated_extension, simulated_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("-w", "--world", action="append", default=[])
    parser.add_argument("-s", "--seed", action="append", type=int, default=[])
    parser.add_argument("--kappa-base", action="append", type=float, default=[])
    parser.add_argument("--graph-n", type=int, default=60)
    parser.add_argument("--chain-n", type=int, default=40)
    parser.add_argument("--train-n", type=int, default=120)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    lines = [
        "# Partial vs all-or-nothing SD where SD is reached (SIMULATED)",
        "",
        "Made with `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/graphs_sd_reach.py "
        + " ".join(f"-w {w}" for w in args.world)
        + " "
        + " ".join(f"-s {s}" for s in args.seed)
        + " "
        + " ".join(f"--kappa-base {k:g}" for k in args.kappa_base)
        + f" --graph-n {args.graph_n} --chain-n {args.chain_n} --workdir WORLDS` on the world folders of "
        "`eval matrix` (estimators as bootstrapped there; the calibration's κ base replaced, position κ).",
        "",
        "| world | κ base | requests | policy | accuracy % | SLM share % | SD part calls (on the SLM) "
        "| decomposed steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = load_settings()
    for preset in args.world:
        for seed in args.seed:
            folder = args.workdir / f"{preset}-seed{seed}"
            settings = world_settings(base, folder, preset, seed, WorldTraining())
            runtime = Runtime(settings)
            try:
                estimators = RegistryEstimatorSource(runtime)()
            finally:
                runtime.close()
            assert estimators is not None, f"{folder}: not bootstrapped (run eval matrix first)"
            replayer = Replayer(
                ProfileSet(None, []),
                estimators,
                max_steps=settings.routing.max_steps,
                latency=simulated_latency(settings),
                extension=simulated_extension(settings),
            )
            graphs = GraphReplayer(replayer)
            sets = {
                "graph": graph_tasks(settings, "graph", args.graph_n, args.train_n),
                "chains": graph_tasks(settings, "mixed", args.chain_n, args.train_n),
            }
            for kappa_base in args.kappa_base:
                calibration = {**(estimators.calibration or {}), "kappa_base": kappa_base}
                bundle = dataclasses.replace(estimators, calibration=calibration)
                for family, tasks in sets.items():
                    for name in SD_POLICIES:
                        policy, used = policy_at(name, settings.routing, "position", kappa_base, bundle)
                        runs, stats = replay_graphs(graphs, policy, used, tasks)
                        r = sd_row(name, family, runs, stats, 200)
                        lines.append(
                            f"| {preset} / seed {seed} | {kappa_base:g} | {family} | `{name}` | "
                            f"{100 * r['accuracy']:.1f} | {100 * r['slm_share']:.1f} | "
                            f"{r['sd_part_calls']} ({r['sd_part_calls_slm']}) | {r['sd_run']} |"
                        )
                        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
