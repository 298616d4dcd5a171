"""Cold-start ``hera`` (no estimators) against Random at equal SLM share, and its online threshold
learned from shadow trees (SIMULATED).

Per world (a simulator preset and seed; the defaults are the default world, seeds 0 and 1), in its
own folder under ``--workdir`` (SQLite; a second run reuses the profiles):

1. the evaluation profile of ``eval matrix`` (``--eval-n`` ``mixed`` requests from offset
   ``--train-n``, node budget 64), so the numbers sit next to the bootstrapped ``hera`` of
   ``reports/matrix`` on the same requests;
2. a pool of ``--shadow-n`` requests profiled as shadow trees (the shadow node budget,
   ``HERA_CONTINUAL__SHADOW_NODE_BUDGET``) from offset 10,000, standing for the shadowed share of
   live traffic;
3. replays, no estimators anywhere: All-LLM, All-SLM, cold-start ``hera`` at the configured default
   threshold, Random at its SLM share (random seeds 0-4), and cold-start ``hera`` at the threshold
   :func:`hera_router.training.coldstart.fit_trees` fits on the first n shadow trees, for each
   n of ``--curve``.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cold_start.py --workdir /tmp/coldstart/work \
        --out reports/cold-start
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.evaluation.metrics import accuracy, normalised_cost, slm_usage
from hera_router.evaluation.world_replay import WorldConfig
from hera_router.evaluation.worlds import ProfileSpec, load_state, profiled, save_state, world_settings
from hera_router.routing.base import Policy
from hera_router.routing.baselines import AllLLM, AllSLM, RandomPolicy
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.hera import HeraPolicy
from hera_router.training.coldstart import fit_trees
from hera_router.training.labels import request_trees
from hera_router.training.profiling import load_trees
from hera_router.training.replay import Replayer, load_profile, simulated_extension, simulated_latency

SHADOW_OFFSET = 10_000
RANDOM_SEEDS = (0, 1, 2, 3, 4)
TARGET_POINTS = 0.02
"""Within this many accuracy points of the bootstrapped ``hera`` counts as reaching its accuracy."""
SHARE_POINTS = 0.05
"""...and at an SLM share at most this far below its share: its operating point, not All-LLM's."""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def bootstrapped(matrix: Path, preset: str, seed: int) -> dict[str, float] | None:
    """The bootstrapped ``hera`` row (and Random at its share) of a recorded ``eval matrix``."""
    if not matrix.exists():
        return None
    for world in json.loads(matrix.read_text(encoding="utf-8"))["worlds"]:
        if world["preset"] == preset and world["seed"] == seed:
            row = next(r for r in world["policies"] if r["policy"] == "hera")
            share = next((e for e in world["equal_share"] if e["policy"] == "hera"), {})
            return {
                "accuracy": row["accuracy"],
                "slm_share": row["slm_usage"],
                "cost": row["cost"],
                "random_accuracy": share.get("random_accuracy", float("nan")),
            }
    return None


def run_world(base: Any, args: argparse.Namespace, preset: str, seed: int) -> dict[str, Any]:  # noqa: PLR0915
    folder = args.workdir / f"{preset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    config = WorldConfig(out=folder, workdir=args.workdir, train_n=args.train_n, eval_n=args.eval_n)
    settings = world_settings(base, folder, preset, seed, config.training())
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    state = load_state(folder)
    try:
        eval_run = profiled(runtime, state, ProfileSpec("eval", "mixed", args.eval_n, args.train_n, 64), log)
        save_state(folder, state)
        shadow_budget = settings.continual.shadow_node_budget
        shadow = ProfileSpec("shadow", "mixed", args.shadow_n, SHADOW_OFFSET, shadow_budget)
        shadow_run = profiled(runtime, state, shadow, log)
        save_state(folder, state)
        profile = load_profile(settings, runtime.sessions, eval_run)
        shadow = request_trees(load_trees(runtime.sessions, shadow_run))
        shadow.sort(key=lambda tree: int(tree.key.rsplit("-", 1)[-1]) if tree.key.rsplit("-", 1)[-1].isdigit() else 0)
        replayer = Replayer(
            profile,
            None,
            max_steps=settings.routing.max_steps,
            latency=simulated_latency(settings),
            extension=simulated_extension(settings),
        )
        costs = profile.all_llm_costs()

        def measure(policy: Policy) -> dict[str, float]:
            outcomes, stats = replayer.run(policy)
            return {
                "accuracy": accuracy(outcomes),
                "slm_share": slm_usage(outcomes),
                "cost": normalised_cost(outcomes, costs),
                "off_tree": stats.off_tree,
            }

        routing = settings.routing

        def cold(threshold: float) -> dict[str, float]:
            policy = HeraPolicy(routing, name="hera")
            policy.cold_start = ColdStart(threshold)
            return measure(policy)

        rows: dict[str, Any] = {"all-llm": measure(AllLLM(routing)), "all-slm": measure(AllSLM(routing))}
        rows["cold-start-default"] = {"threshold": routing.cold_start_threshold, **cold(routing.cold_start_threshold)}
        share = rows["cold-start-default"]["slm_share"]
        randoms = [
            measure(RandomPolicy(routing.model_copy(update={"random_p_slm": share, "random_seed": s})))
            for s in RANDOM_SEEDS
        ]
        rows["random-at-share"] = {
            "p_slm": share,
            "accuracy": statistics.mean(r["accuracy"] for r in randoms),
            "accuracy_seed0": randoms[0]["accuracy"],
            "accuracy_min": min(r["accuracy"] for r in randoms),
            "accuracy_max": max(r["accuracy"] for r in randoms),
            "slm_share": statistics.mean(r["slm_share"] for r in randoms),
        }
        log(f"{preset}/{seed}: {json.dumps(rows)}")
        curve = []
        meta = load_profile(settings, runtime.sessions, shadow_run).trees
        gold = {t.key: (t.gold, t.metric) for t in meta if t.gold is not None}
        for objective in ("accuracy", "agreement"):
            for n in args.curve:
                trees = {tree.key: tree.nodes for tree in shadow[:n]}
                fit = fit_trees(trees, settings, gold if objective == "accuracy" else None)
                fitted = fit.to_json()
                fitted.pop("points")
                fitted["fit_score"], fitted["fit_slm_share"] = fitted.pop("score"), fitted.pop("slm_share")
                point = {"labels": objective, "shadow_requests": min(n, len(shadow)), **fitted, **cold(fit.threshold)}
                # Random at this point's share too: the cold-start target holds at every threshold.
                point["random_accuracy"] = statistics.mean(
                    measure(
                        RandomPolicy(routing.model_copy(update={"random_p_slm": point["slm_share"], "random_seed": k}))
                    )["accuracy"]
                    for k in RANDOM_SEEDS
                )
                curve.append(point)
                log(f"{preset}/{seed}: {objective} shadow {n}: {json.dumps(point)}")
        sweep = [{"threshold": t, **cold(t)} for t in args.sweep]
        reference = bootstrapped(args.matrix, preset, seed)
        reached = None
        if reference is not None:
            reached = {
                labels: next(
                    (p["shadow_requests"] for p in curve if p["labels"] == labels and _reaches(p, reference)), None
                )
                for labels in ("accuracy", "agreement")
            }
        return {
            "preset": preset,
            "seed": seed,
            "requests": len(profile.trees),
            "shadow_pool": len(shadow),
            "rows": rows,
            "curve": curve,
            "sweep": sweep,
            "bootstrapped": reference,
            "reached_at_shadow_requests": reached,
            "extension_steps": replayer.extension.steps if replayer.extension is not None else 0,
        }
    finally:
        save_state(folder, state)
        runtime.close()


def _reaches(point: dict[str, Any], reference: dict[str, float]) -> bool:
    return bool(
        point["accuracy"] >= reference["accuracy"] - TARGET_POINTS - 1e-9
        and point["slm_share"] >= reference["slm_share"] - SHARE_POINTS - 1e-9
    )


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def render(results: list[dict[str, Any]], command: str, settings: Any) -> str:
    lines = [
        "# Cold-start `hera` (SIMULATED)",
        "",
        "> **SIMULATED.** Every number here was measured by replay on the simulated agent world "
        "(`hera_router/simulator`), not on real models or real tasks.",
        "",
        f"Made with `{command}`.",
        "",
        f"Cold start: every step on the SLM, kept when its mean token logprob reaches the threshold, else re-run "
        f"on the LLM; default threshold {settings.routing.cold_start_threshold:g}, fit after at least "
        f"{settings.routing.cold_start_min_requests} shadowed requests: the highest SLM share whose score on the "
        "shadowed requests (accuracy where they carry gold answers, else agreement with the All-LLM chain's answer), "
        f"less one standard error, is at least {1 - settings.calibration.accuracy_tolerance:.0%} of All-LLM's "
        "(replayed on the shadow trees only, no extra model calls). "
        "Random: p = the cold-start SLM share, mean of random seeds 0-4 (min-max in brackets). Bootstrapped "
        "`hera`: the `reports/matrix` row on the same evaluation requests.",
        "",
        "## No bootstrap, no shadow samples: cold-start `hera` vs Random at equal SLM share",
        "",
        "| world | requests | All-LLM acc % | All-SLM acc % | cold-start acc % | SLM share % | cost × All-LLM "
        "| Random acc % at that share | Δ points | bootstrapped hera acc % (SLM %) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows, boot = r["rows"], r["bootstrapped"]
        c, rnd = rows["cold-start-default"], rows["random-at-share"]
        lines.append(
            f"| {r['preset']} / seed {r['seed']} | {r['requests']} | {pct(rows['all-llm']['accuracy'])} | "
            f"{pct(rows['all-slm']['accuracy'])} | {pct(c['accuracy'])} | {pct(c['slm_share'])} | {c['cost']:.2f} | "
            f"{pct(rnd['accuracy'])} ({pct(rnd['accuracy_min'])}-{pct(rnd['accuracy_max'])}) | "
            f"{100 * (c['accuracy'] - rnd['accuracy']):+.1f} | "
            + (f"{pct(boot['accuracy'])} ({pct(boot['slm_share'])})" if boot else "–")
            + " |"
        )
    lines += [
        "",
        "## Online: the threshold fitted on the first n shadowed requests",
        "",
        "Labels: `accuracy` when the shadowed requests carry gold answers (scored with their metric, All-LLM's "
        "accuracy on them the reference), `agreement` without (the final answer equals the All-LLM chain's; "
        "the reference is 1).",
        "",
        "| world | labels | shadowed requests | fitted | threshold | fit: score on shadow % (All-LLM %, SLM %) "
        "| cold-start acc % | SLM share % | cost × All-LLM | Random acc % at that share | bootstrapped reached |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        boot = r["bootstrapped"]
        for p in r["curve"]:
            ok = "–" if boot is None else ("yes" if _reaches(p, boot) else "no")
            lines.append(
                f"| {r['preset']} / seed {r['seed']} | {p['labels']} | {p['shadow_requests']} | "
                f"{'yes' if p['fitted'] else 'no (default)'} | {p['threshold']:.3f} | "
                f"{pct(p['fit_score'])} ({pct(p['reference'])}, {pct(p['fit_slm_share'])}) | {pct(p['accuracy'])} | "
                f"{pct(p['slm_share'])} | {p['cost']:.2f} | {pct(p['random_accuracy'])} | {ok} |"
            )
    lines += ["", "## Fixed thresholds (what the online fit chooses among)", ""]
    lines += ["| world | threshold | acc % | SLM share % | cost × All-LLM |", "|---|---|---|---|---|"]
    for r in results:
        for p in r["sweep"]:
            lines.append(
                f"| {r['preset']} / seed {r['seed']} | {p['threshold']:g} | {pct(p['accuracy'])} | "
                f"{pct(p['slm_share'])} | {p['cost']:.2f} |"
            )
    lines += [
        "",
        "## Shadowed requests until the bootstrapped result",
        "",
        "Reached: accuracy at most 2 points below the bootstrapped `hera`'s, at an SLM share at most 5 points "
        "below its share (the same operating point; All-LLM's accuracy alone would not count).",
        "",
    ]
    for r in results:
        boot = r["bootstrapped"]
        reached = r["reached_at_shadow_requests"]
        if boot is None:
            lines.append(f"- {r['preset']} / seed {r['seed']}: no bootstrapped reference recorded")
        else:
            said = "; ".join(
                f"{labels} labels: "
                + (f"reached at {at} shadowed requests" if at is not None else "not reached on the curve")
                for labels, at in reached.items()
            )
            lines.append(
                f"- {r['preset']} / seed {r['seed']}: bootstrapped {pct(boot['accuracy'])} % at "
                f"{pct(boot['slm_share'])} % SLM; {said}"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-w", "--world", action="append", default=[])
    parser.add_argument("-s", "--seed", action="append", type=int, default=[])
    parser.add_argument("--train-n", type=int, default=200)
    parser.add_argument("--eval-n", type=int, default=100)
    parser.add_argument("--shadow-n", type=int, default=400)
    parser.add_argument("--curve", type=int, nargs="+", default=[0, 10, 25, 50, 100, 200, 400])
    parser.add_argument("--sweep", type=float, nargs="+", default=[-0.05, -0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.8])
    parser.add_argument("--matrix", type=Path, default=Path("reports/matrix/results.json"))
    args = parser.parse_args()
    base = load_settings()
    results = [
        run_world(base, args, preset, seed) for preset in (args.world or ["default"]) for seed in (args.seed or [0, 1])
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    command = "HF_HUB_OFFLINE=1 .venv/bin/python " + " ".join(["benchmarks/cold_start.py", *sys.argv[1:]])
    (args.out / "results.json").write_text(
        json.dumps({"label": "SIMULATED", "command": command, "worlds": results}, indent=2), encoding="utf-8"
    )
    (args.out / "README.md").write_text(render(results, command, base), encoding="utf-8")
    log(f"wrote {args.out}/README.md")


if __name__ == "__main__":
    main()
