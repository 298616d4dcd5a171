"""Wall-clock time of a graph request: its plan's nodes concurrently vs the same plan sequentially.

SIMULATED. The graph family of the simulated world (``simulator/graph.py``: comparisons and
aggregations over two to four lookups or computations). The simulated SLM and LLM are served over
HTTP by dev servers that *sleep* each call's latency from the simulator's latency model
(``presets.toml``: first token + prefill + decode per token, with jitter) times ``--time-scale``;
real ``hera-router worker`` processes (router prefork, edge and cloud threads, 4 each), local
Redis, a fresh Postgres database. Each request runs alone (the next is submitted when it is
done), first on a system with ``HERA_GRAPH_SEQUENTIAL=true`` (one node at a time, in plan order),
then on one without (every ready node at once). The calls are the same in both runs (temperature
0: an answer depends on its prompt only), so the answers, and so the accuracy, are equal; the
benchmark checks that.

Wall-clock is the graph request's ``created_at`` to its last update (the fan-in that finished it).
Next to it, from the model calls' recorded latencies (the clients' measured time): the sum over all calls (what any
sequential execution waits at least) and the critical path (planning step + the slowest part +
the final step), the bound a perfectly concurrent execution approaches.

    .venv/bin/python benchmarks/bench_graph.py               # 8 requests, writes results/graph.md
    .venv/bin/python benchmarks/bench_graph.py --n 4 --no-write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hera_router.agent.scoring import score  # noqa: E402
from hera_router.db.enums import TERMINAL_REQUEST_STATUSES, CallStatus  # noqa: E402
from hera_router.db.migrate import upgrade  # noqa: E402
from hera_router.db.repositories import ModelCallRepository, RequestRepository  # noqa: E402
from hera_router.db.repositories.plan_nodes import PlanNodeRepository  # noqa: E402
from hera_router.db.session import session_scope  # noqa: E402
from hera_router.simulator.generate import TaskRecord, generate  # noqa: E402
from hera_router.workers.publisher import celery_dispatcher  # noqa: E402
from tests.conftest import REDIS_URL, fresh_postgres_database  # noqa: E402
from tests.integration.pipeline.distributed import distributed_system  # noqa: E402
from tests.integration.pipeline.helpers import submit  # noqa: E402

SEED = 11


@dataclass
class Run:
    wall_s: float
    answer: str | None
    correct: float
    calls_sum_s: float
    critical_s: float
    nodes: int
    steps: int


def _run_one(system: object, task: TaskRecord, policy: str) -> Run:
    app = system.app  # type: ignore[attr-defined]
    sessions = app.hera_runtime.sessions
    [graph_id] = submit(sessions, celery_dispatcher(app), [task], policy)
    deadline = time.monotonic() + 600
    while True:
        with session_scope(sessions) as session:
            row = RequestRepository(session).get(graph_id)
            assert row is not None
            if row.status in TERMINAL_REQUEST_STATUSES:
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"request {graph_id} unfinished after 600 s")
        app.pipeline.reconcile()
        time.sleep(0.05)
    with session_scope(sessions) as session:
        row = RequestRepository(session).get(graph_id)
        assert row is not None
        nodes = list(PlanNodeRepository(session).for_request(graph_id))
        calls = ModelCallRepository(session)

        def latency(request_id: uuid.UUID | None) -> float:
            if request_id is None:
                return 0.0
            return sum(c.latency_ms for c in calls.list_for_request(request_id) if c.status is CallStatus.OK) / 1e3

        own = latency(graph_id)
        per_node = {n.key: latency(n.child_id) for n in nodes}
        finish: dict[str, float] = {}
        for node in nodes:  # plan order is topological
            finish[node.key] = per_node[node.key] + max((finish[k] for k in node.needs), default=0.0)
        wall = (row.updated_at - row.created_at).total_seconds()
        return Run(
            wall_s=wall,
            answer=row.final_answer,
            correct=score(task.metric, row.final_answer, task.gold),
            calls_sum_s=own + sum(per_node.values()),
            critical_s=own + max(finish.values(), default=0.0),
            nodes=len(nodes),
            steps=row.slm_steps + row.llm_steps,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--policy", default="all-llm")
    parser.add_argument("--time-scale", type=float, default=0.25)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tasks = generate("graph", args.n, SEED)
    results: dict[str, list[Run]] = {}
    with fresh_postgres_database("hera_bench_graph") as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        for mode, sequential in (("sequential", "true"), ("concurrent", "false")):
            overrides = {"HERA_GRAPH_SEQUENTIAL": sequential}
            (Path(tmp) / mode).mkdir()
            with distributed_system(
                url, REDIS_URL, Path(tmp) / mode, seed=SEED, overrides=overrides, time_scale=args.time_scale
            ) as system:
                # Warm up: a message published before a worker declared its queue is dropped by
                # the Redis transport (and re-driven seconds later); one request end to end first.
                _run_one(system, generate("lookup", 1, SEED)[0], args.policy)
                results[mode] = [_run_one(system, task, args.policy) for task in tasks]
                print(mode, [round(r.wall_s, 2) for r in results[mode]], flush=True)
    seq, par = results["sequential"], results["concurrent"]
    same = all(a.answer == b.answer for a, b in zip(seq, par, strict=True))
    ratios = [b.wall_s / a.wall_s for a, b in zip(seq, par, strict=True)]
    lines = [
        "# Graph requests: concurrent nodes vs the same plan sequentially (SIMULATED)",
        "",
        f"`.venv/bin/python benchmarks/bench_graph.py --n {args.n} --policy {args.policy} "
        f"--time-scale {args.time_scale}`: {args.n} requests of the simulated graph family (world seed {SEED}), "
        "each alone, real `hera-router worker` processes (router prefork ×4, edge/cloud threads ×4), Redis, "
        f"Postgres; simulated model latency slept in real time × {args.time_scale}. Policy `{args.policy}`.",
        "",
        "| # | nodes | steps | sequential s | concurrent s | ratio | Σ calls s | critical path s | correct |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, (a, b) in enumerate(zip(seq, par, strict=True)):
        lines.append(
            f"| {i} | {b.nodes} | {b.steps} | {a.wall_s:.2f} | {b.wall_s:.2f} | {b.wall_s / a.wall_s:.2f} | "
            f"{b.calls_sum_s:.2f} | {b.critical_s:.2f} | {b.correct:.0f} |"
        )
    total_ratio = sum(b.wall_s for b in par) / sum(a.wall_s for a in seq)
    lines += [
        "",
        f"- ratio of total wall-clock (concurrent / sequential): **{total_ratio:.2f}**; "
        f"per request: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f} (target ≤ 0.6).",
        f"- the bound from the recorded latencies (critical path / Σ calls): "
        f"{sum(b.critical_s for b in par) / sum(b.calls_sum_s for b in par):.2f}.",
        f"- accuracy: sequential {statistics.mean(r.correct for r in seq):.2f}, concurrent "
        f"{statistics.mean(r.correct for r in par):.2f}; identical answers: {same}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        (REPO / "benchmarks" / "results" / "graph.md").write_text(text)


if __name__ == "__main__":
    main()
