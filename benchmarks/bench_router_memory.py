"""Memory of a router process over many requests: RSS while HERA decides 10,000 simulated requests.

In one process, no Celery and no database writes: the active estimators are loaded the way a
router child loads them (:class:`~hera_router.estimators.loader.RegistryEstimatorSource`, so the
torch thread setting, the shared backbone, the embedding cache and micro-batching are the
production ones), and every request of the simulated world (``mixed`` family, from ``--offset``)
is walked step by step as the pipeline does it: a decision per routed step (its span honoured),
the step run on the simulated edge or cloud model, the verify stage after each SLM step (an
escalation re-runs the step on the cloud), SD parts run on the edge. RSS (``/proc/self/status``)
is sampled every ``--every`` requests and written as CSV next to a PNG of RSS over requests.

Needs a data dir where ``hera-router bootstrap`` has run:

    HERA_DATA_DIR=/tmp/hera-perf .venv/bin/python benchmarks/bench_router_memory.py --requests 10000

``--load-only`` reports the RSS after importing and after loading the estimators and exits: run it
with ``HERA_ESTIMATORS__TORCH_THREADS`` and ``--no-share`` to compare what the shared backbone saves.
SIMULATED world.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def anon_mb() -> float:
    """Anonymous (heap, tensors) resident memory: RSS without pages of mapped files (libraries,
    mmapped checkpoints), which the kernel can drop and other processes share."""
    with open("/proc/self/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no Anonymous in /proc/self/smaps_rollup")


def main() -> None:  # noqa: PLR0915 - one linear benchmark script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--policy", default="hera")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory"))
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--no-share", action="store_true", help="load the encoder heads with their own backbone copy")
    parser.add_argument(
        "--simulator-only",
        action="store_true",
        help="no estimators: --policy from the registry (e.g. random), to see what the in-process simulated "
        "models hold (their replay caches keep up to 50,000 states, then start over)",
    )
    args = parser.parse_args()
    started_rss = rss_mb()

    from hera_router.agent.format import parse_step, render_step_messages
    from hera_router.backends.base import GenerationParams, mean_logprob
    from hera_router.backends.registry import create_backend
    from hera_router.config import load_settings
    from hera_router.db.runtime import Runtime
    from hera_router.estimators import encoder
    from hera_router.estimators.loader import RegistryEstimatorSource
    from hera_router.routing.base import Executor, RoutingContext, Step
    from hera_router.routing.hera import hera_variant
    from hera_router.simulator.generate import generate

    if args.no_share:
        encoder.share_backbone = lambda model, shared: 0  # type: ignore[assignment]  # the old behaviour
    settings = load_settings()
    runtime = Runtime(settings)
    imported_rss = rss_mb()
    source = RegistryEstimatorSource(runtime)
    began = time.perf_counter()
    estimators = None if args.simulator_only else source()
    assert estimators is not None or args.simulator_only, (
        f"no active estimators in {settings.data_dir}: run `hera-router bootstrap`"
    )
    load_s = time.perf_counter() - began
    loaded_rss = rss_mb()
    dp = getattr(estimators, "dp", None)
    shared = getattr(getattr(dp, "inner", dp), "head", None)
    print(
        f"RSS: start {started_rss:.0f} MB, imports {imported_rss:.0f} MB, estimators loaded {loaded_rss:.0f} MB "
        f"(anonymous {anon_mb():.0f} MB) "
        f"(load {load_s:.1f} s, torch threads {source.torch_threads}, "
        f"DP parameters shared with SBERT {getattr(shared, 'shared_parameters', 0):,})"
    )
    if args.load_only:
        return

    if args.simulator_only:
        from hera_router.routing.registry import create_policy

        policy = create_policy(args.policy, settings.routing)
    else:
        policy = hera_variant(args.policy)(settings.routing)
    edge, cloud = create_backend(settings, "edge"), create_backend(settings, "cloud")
    params = GenerationParams()
    max_steps = settings.routing.max_steps
    verify = getattr(policy, "verify", None)

    def run(request: str, request_id: str) -> tuple[int, float]:
        """Walk one request; returns (decisions, decision ms)."""
        history: list[Step] = []
        current, seq, covered, decided, decide_ms = request, 0, 0, 0, 0.0
        while seq < max_steps:
            parts: tuple[str, ...] = ()
            context = RoutingContext(request_id, request, current, seq, tuple(history), max_steps)
            if covered > 0:
                executor, covered = Executor.SLM, covered - 1
            else:
                decision = policy.decide(context, estimators)
                decided += 1
                decide_ms += decision.elapsed_ms
                executor, covered, parts = decision.executor, decision.span - 1, decision.parts
            pairs = [(s.subtask, s.result) for s in history]
            backend = edge if executor is Executor.SLM else cloud
            if parts:
                for part in parts:
                    output = parse_step(backend.generate(render_step_messages(request, pairs, part, seq), params).text)
                    pairs.append((part, output.result))
                    history.append(Step(part, output.result, executor, None))
            else:
                generation = backend.generate(render_step_messages(request, pairs, current, seq), params)
                output = parse_step(generation.text)
                score = mean_logprob(generation)
                if executor is Executor.SLM and verify is not None:
                    verdict = verify(context, score, estimators)
                    if verdict is not None:
                        decide_ms += verdict.elapsed_ms
                        if not verdict.accept:
                            executor, covered = Executor.LLM, 0
                            generation = cloud.generate(render_step_messages(request, pairs, current, seq), params)
                            output = parse_step(generation.text)
                history.append(Step(current, output.result, executor, score))
            if output.final_answer is not None or output.next_subtask is None:
                break
            current, seq = output.next_subtask, seq + 1
        return decided, decide_ms

    tasks = generate("mixed", args.offset + args.requests, args.seed)[args.offset :]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[int, float, float, int, float]] = []
    decisions, decision_ms, t0 = 0, 0.0, time.perf_counter()
    # Written as it goes: a run stopped early still leaves its samples.
    with args.out.with_suffix(".csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["requests", "rss_mb", "elapsed_s", "decisions", "decision_ms_total", "load_1min", "anon_mb"])
        writer.writerow([0, round(loaded_rss, 1), 0, 0, 0, round(os.getloadavg()[0], 2), round(anon_mb(), 1)])
        for index, task in enumerate(tasks, start=1):
            made, ms = run(task.request, task.id)
            decisions, decision_ms = decisions + made, decision_ms + ms
            if index % args.every == 0 or index == len(tasks):
                rows.append((index, rss_mb(), time.perf_counter() - t0, decisions, decision_ms))
                writer.writerow([*(round(v, 1) for v in rows[-1]), round(os.getloadavg()[0], 2), round(anon_mb(), 1)])
                handle.flush()
                print(
                    f"{index:>6} requests  RSS {rows[-1][1]:7.1f} MB  {rows[-1][2]:7.0f} s  "
                    f"{decisions} decisions, mean {decision_ms / max(decisions, 1):.1f} ms",
                    flush=True,
                )
    window = [rss for n, rss, *_ in rows if n >= min(1_000, args.requests)]
    reference = window[0]
    spread = (max(window) - min(window)) / reference
    print(
        f"\nRSS from request {min(1_000, args.requests)} on: min {min(window):.0f} MB, max {max(window):.0f} MB, "
        f"median {statistics.median(window):.0f} MB, spread {spread:.1%} of the first sample; peak {max(window):.0f} MB"
    )
    embedder = getattr(getattr(estimators, "sp_slm", None), "embedder", None)
    inner = getattr(embedder, "embedder", embedder)
    if inner is not None and hasattr(inner, "hits"):
        total = inner.hits + inner.misses
        print(f"embedding cache: {inner.hits / max(total, 1):.1%} hits of {total} lookups, {inner.cache_size} held")
    _plot(rows, args.out.with_suffix(".png"))


def _plot(rows: list[tuple[int, float, float, int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot([r[0] for r in rows], [r[1] for r in rows], marker=".")
    axis.set_xlabel("requests decided")
    axis.set_ylabel("RSS (MB)")
    axis.set_ylim(bottom=0)
    axis.set_title("Router process RSS with HERA estimators loaded (SIMULATED world)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
