"""Scale run: 10,000 requests through the distributed deployment, throughput over time.

The deployment of ``bench_pipeline.py``'s distributed mode (local Redis, a fresh Postgres
database, ``hera-router worker`` processes: router prefork, edge and cloud threads; zero-latency
simulated models in the workers), plus the raw Celery no-op baseline on the router's pool,
measured in the same run before the batch. All ``--requests`` are submitted at once, as one
batch job does it (one transaction writes the requests and their first hops; the outbox
publishes them), then the finished requests and executed steps are counted every
``--every`` seconds until all are terminal. Reports throughput per interval (steps/s and
requests/s), whether it holds up over the run (last third against the first third), the
ratio to the raw no-op baseline, and the Postgres row counts at the end. SIMULATED models.

    .venv/bin/python benchmarks/bench_scale.py --requests 10000 --output benchmarks/results/scale.md
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import func, select

from benchmarks.bench_pipeline import (
    REPO,
    count_work,
    distributed_deployment,
    loadavg,
    log,
    minus,
    observer,
    parse_args,
    postgres_backend_cpu,
    redis_baseline,
    submit,
    worker_counts,
)
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES
from hera_router.db.models import Request
from hera_router.db.session import session_scope
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher


def progress(sessions, ids_filter) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(terminal requests, executed steps) of the batch so far."""
    with session_scope(sessions) as session:
        done = session.scalar(
            select(func.count()).select_from(Request).where(ids_filter, Request.status.in_(TERMINAL_REQUEST_STATUSES))
        )
        steps = session.scalar(
            select(func.coalesce(func.sum(Request.slm_steps + Request.llm_steps), 0)).where(ids_filter)
        )
    return int(done or 0), int(steps or 0)


def main() -> int:  # noqa: PLR0915 - one linear benchmark script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "scale.md")
    own, rest = parser.parse_known_args()
    args = parse_args(["--quick", *rest])  # the deployment's options (pools, concurrency, policy, seed)
    args.timeout = max(args.timeout, 7200.0)
    load_before = loadavg()
    tasks = generate("mixed", own.requests, args.seed)
    samples: list[tuple[float, int, int, float]] = []
    with distributed_deployment(args) as deployment:
        app = deployment.app
        router_pool = f"{args.router_pool} -c {args.router_concurrency}"
        log("scale: raw Celery baseline on the router's pool")
        baseline = redis_baseline(
            app,
            deployment.client,
            router_pool,
            deployment.queues.maintenance,
            args,
            args.router_concurrency,
            deployment.suffix,
        )
        counts, database_cpu = (
            worker_counts(deployment.client, deployment.suffix),
            postgres_backend_cpu(deployment.database_url),
        )
        counts_before, cpu_before = counts(), database_cpu()
        log(f"scale: submitting {len(tasks)} requests")
        started = time.time()
        ids = submit(app.hera_runtime.sessions, celery_dispatcher(app), tasks, args.policy)
        submitted_s = time.time() - started
        batch_filter = Request.id.in_(ids)
        sessions = observer(app)
        while True:
            time.sleep(own.every)
            done, steps = progress(sessions, batch_filter)
            samples.append((time.time() - started, done, steps, os.getloadavg()[0]))
            log(f"scale: {done}/{len(ids)} requests, {steps} steps after {samples[-1][0]:.0f} s")
            if done >= len(ids):
                break
            if samples[-1][0] > args.timeout:
                raise TimeoutError(f"{len(ids) - done} requests unfinished after {args.timeout:.0f} s")
        with session_scope(sessions) as session:
            last = session.scalar(select(func.max(Request.updated_at)).where(batch_filter))
        assert last is not None
        wall_s = last.timestamp() - started
        counted, cpu_s = minus(counts(), counts_before), database_cpu() - cpu_before
        steps, hops, statuses, errors = count_work(sessions, ids)
    load_after = loadavg()

    rows = []
    previous = (0.0, 0, 0)
    for elapsed, done, executed, load in samples:
        span = elapsed - previous[0]
        rows.append((elapsed, done, executed, (executed - previous[2]) / span, (done - previous[1]) / span, load))
        previous = (elapsed, done, executed)
    full = [r for r in rows if r[1] < len(ids)] or rows  # intervals before the tail drained
    third = max(1, len(full) // 3)
    first, last_third = statistics.fmean(r[3] for r in full[:third]), statistics.fmean(r[3] for r in full[-third:])
    csv_path = own.output.with_suffix(".csv")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["elapsed_s", "requests_done", "steps_done", "steps_per_s", "requests_per_s", "load1"])
        for row in rows:
            writer.writerow([f"{row[0]:.1f}", row[1], row[2], f"{row[3]:.2f}", f"{row[4]:.2f}", f"{row[5]:.2f}"])
    command = ".venv/bin/python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    per = counted.per(hops)
    cpu_ms = cpu_s * 1e3 / steps if steps else 0.0
    by_status, held = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())), last_third / first
    lines = [
        "# Scale run: requests through the distributed deployment (SIMULATED models, zero latency)",
        "",
        f"    {command.strip()}",
        "",
        f"{len(ids)} `{args.policy}` requests (`mixed`, seed {args.seed}) submitted at once ({submitted_s:.1f} s to "
        f"write and publish); router `{router_pool}`, edge and cloud `threads -c {args.exec_concurrency}`; Redis, "
        f"Postgres. {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{load_before} at the start, {load_after} at the end.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| wall time (submit → last request's final update) | {wall_s:.0f} s |",
        f"| requests finished | {sum(statuses.values())} ({by_status}) |",
        f"| executed steps / hops | {steps} / {hops} |",
        f"| routed steps/s over the run | {steps / wall_s:.1f} |",
        f"| raw Celery no-op tasks/s, router's pool, same run | {baseline.noop_per_s:.0f} |",
        f"| ratio (steps/s ÷ raw no-op/s) | {steps / wall_s / baseline.noop_per_s:.3f} |",
        f"| steps/s, first third of the run → last third | {first:.1f} → {last_third:.1f} ({held:.2f}×) |",
        f"| statements / write transactions / round trips per hop (all worker processes) "
        f"| {per.get('statements', 0):.2f} / {per.get('transactions', 0):.2f} / {per.get('round_trips', 0):.2f} |",
        f"| Postgres backend CPU per routed step (the run's database; `/proc/<pid>/stat`) | {cpu_ms:.2f} ms |",
        f"| routed steps/s one Postgres core would carry at that CPU | {1e3 / cpu_ms if cpu_ms else 0:,.0f} |",
        "",
        f"Errors: {errors or 'none'}. Throughput over time (every {own.every:.0f} s; raw: `{csv_path.name}`):",
        "",
        "| elapsed s | requests done | steps done | steps/s | requests/s | load |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {r[0]:.0f} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} |" for r in rows),
        "",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    own.output.write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
