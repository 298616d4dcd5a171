"""Estimator validation (in-distribution and unseen family) and per-call latency, on the simulator.

Trains every estimator variant on a profile of one task family, then measures each on held-out
requests of that family (in-distribution) and on a family never seen in training (out of
distribution), and times single inference calls. Everything is SIMULATED: the profiles come from
the simulated world (hera_router/simulator), not from real models.

    .venv/bin/python benchmarks/bench_estimators.py --data-dir /tmp/hera-bench \\
        --train-family lookup --ood-family arithmetic --n 120 --held-out 40

Writes a markdown table to stdout (and JSON next to it with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.runtime import Runtime
from hera_router.estimators.loader import load_estimator
from hera_router.routing.estimators import ChainState
from hera_router.training.evaluation import headline
from hera_router.training.profiling import create_run, profile_run, run_config
from hera_router.training.trainers import evaluate_version, train_estimator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when a model loads, not at import

STATE = ChainState(
    "Who is the mayor of the birthplace of the mother of the lead actor of the film Broken Voyage?",
    (),
    "Find the mother of Hugo Wenss.",
    2,
)

VARIANTS = [
    ("urc", None),
    ("dp", None),
    ("sp_slm", "embedding"),
    ("sp_llm", "embedding"),
    ("sd", "prompted"),
    ("sp_llm", "generative"),
    ("sd", "trained"),
]


def timed(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up (lazy loads, caches)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def latency(name: str, component: Any, *, slow: bool) -> dict[str, float]:
    """Median milliseconds of one inference call (and of a 5-step roll for the predictors)."""
    state = STATE
    calls: dict[str, Callable[[], object]] = {
        "urc": lambda: component.score(state.request),
        "dp": lambda: component.predict(state.current, state.seq),
        "sp_slm": lambda: component.roll(state, 1),
        "sp_llm": lambda: component.roll(state, 1),
        "sd": lambda: component.decompose(state.request, state.current, "Find the birthplace of Hanno Eldss."),
    }
    found = {"latency_ms": timed(calls[name], 3 if slow else 50)}
    if name.startswith("sp"):
        found["latency_roll5_ms"] = timed(lambda: component.roll(state, 5), 2 if slow else 20)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/hera-bench-estimators"))
    parser.add_argument("--train-family", default="lookup")
    parser.add_argument("--ood-family", default="arithmetic")
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--skip-slow", action="store_true", help="leave out the causal-LM variants")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = load_settings(data_dir=args.data_dir)
    upgrade(settings.database_url)
    runtime = Runtime(settings)
    runs = {}
    for label, family, n, offset in (
        ("train", args.train_family, args.n, 0),
        ("in-distribution", args.train_family, args.held_out, args.n),
        ("out-of-distribution", args.ood_family, args.held_out, 0),
    ):
        config = run_config(settings, family=family, n=n, offset=offset)
        runs[label] = create_run(runtime.sessions, label, "sim", config)
        profile_run(settings, runtime.sessions, runs[label])

    rows: list[dict[str, Any]] = []
    for name, variant in VARIANTS:
        if args.skip_slow and variant in {"generative", "trained"}:
            continue
        started = time.perf_counter()
        result = train_estimator(runtime, name, runs["train"], variant=variant)
        assert result is not None
        train_s = time.perf_counter() - started
        metric, validation, baseline = headline(result.metrics)
        row: dict[str, Any] = {
            "name": name,
            "variant": result.variant,
            "metric": metric,
            "train_s": train_s,
            "validation": validation,
            "validation_baseline": baseline,
        }
        for label in ("in-distribution", "out-of-distribution"):
            metrics = evaluate_version(runtime, name, result.version, runs[label])
            _, value, base = headline(metrics)
            row[label], row[f"{label} baseline"] = value, base
            row[f"{label} metrics"] = metrics
        component = load_estimator(name, result.path, str(result.version), settings)
        row.update(latency(name, component, slow=variant in {"generative", "trained"}))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if "metrics" not in k}, default=str), flush=True)

    from hera_router.estimators.similarity import shared_embedder

    embedder = shared_embedder()
    counter = iter(range(10**9))
    similarity_ms = timed(lambda: embedder.similarity(f"Find the mother of X{next(counter)}.", "Find the mayor."), 50)
    print(f"\nsimilarity (two uncached texts): {similarity_ms:.1f} ms")
    print(
        "\n| estimator | variant | metric | validation (baseline) | in-distribution (baseline) | "
        "unseen family (baseline) | train s | latency ms/call |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        roll = f" (roll 5: {row['latency_roll5_ms']:.1f})" if "latency_roll5_ms" in row else ""
        print(
            f"| {row['name']} | {row['variant']} | {row['metric']} | {row['validation']:.3f} "
            f"({row['validation_baseline']:.3f}) | {row['in-distribution']:.3f} "
            f"({row['in-distribution baseline']:.3f}) | {row['out-of-distribution']:.3f} "
            f"({row['out-of-distribution baseline']:.3f}) | {row['train_s']:.0f} | {row['latency_ms']:.1f}{roll} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "similarity_ms": similarity_ms}, indent=2, default=str))


if __name__ == "__main__":
    main()
