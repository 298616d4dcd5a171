"""HERA with the real bootstrapped estimators: decision latency per branch, decision time as a share
of end-to-end request time, and router throughput with and without micro-batching. SIMULATED world.

Needs a data dir where ``hera-router bootstrap`` has run (active URC, DP, SP_SLM, SP_LLM, SD; the
default CPU variants: MiniLM + LoRA, embedding SP, prompted SD).

1. Latency: ``--n`` simulated requests run through the embedded system with the ``hera`` policy
   (one worker thread, so decisions are timed without contention). Every decision row carries its
   measured ``elapsed_ms``; the prompted SD's call to the *simulated* edge model costs microseconds,
   so ``--sd-call-s`` (default 0.3 s, the realistic edge step the issue names) is added once per
   decision that asked the SD, and reported separately.
2. Share: per request, decision time / (decision time + model time of its executed steps with edge
   0.3 s/step and cloud 1.5 s/step; an SD part is an edge step).
3. Throughput: the (request, step) contexts of those runs decided again by ``--threads`` threads
   sharing one set of estimators, plain vs micro-batched (``estimators/batching.py``), in the same
   process; decisions per second and the ratio. URC (cached per request) and SD (an edge-model
   call) are off here, so that the measurement is the per-step encoder work: SBERT embeddings of
   the roll-outs and DP.

4. ``--training-load normal|nice|idle``: the same latency run while a real training job shares the
   machine: ``hera-router train dp`` (LoRA on MiniLM, torch's default threads) restarted in a loop
   in its own process, at ``HERA_ESTIMATORS__TRAINING_PRIORITY=normal`` (what a training job
   without protection does), ``nice`` (the default: training yields) or ``idle``. The latency run starts
   once the trainer is in its first epoch. The candidate versions it registers are never promoted
   (use a scratch copy of the data dir).

    HERA_DATA_DIR=/tmp/hera-boot .venv/bin/python benchmarks/bench_hera_decisions.py --n 40 --threads 8
    HERA_DATA_DIR=/tmp/hera-boot .venv/bin/python benchmarks/bench_hera_decisions.py --n 40 --repeats 0 \
        --training-load nice
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hera_router.config import Mode, Settings, load_settings
from hera_router.db.enums import Executor
from hera_router.db.models import Decision, Request, Subtask
from hera_router.db.repositories import DecisionRepository, RequestRepository, SubtaskRepository, TenantRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.estimators.loader import RegistryEstimatorSource
from hera_router.pipeline.names import TaskName, plan_task_id
from hera_router.routing.base import RoutingContext, Step
from hera_router.routing.estimators import Estimators
from hera_router.routing.hera import HeraPolicy
from hera_router.simulator.generate import generate
from hera_router.workers.publisher import celery_dispatcher
from hera_router.workers.system import embedded_system

EDGE_S, CLOUD_S = 0.3, 1.5
TERMINAL = {"succeeded", "failed", "cancelled"}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_requests(settings: Settings, n: int, seed: int) -> list[uuid.UUID]:
    tasks = generate("mixed", n, seed)
    with embedded_system(settings, concurrency=1) as system:
        sessions = system.app.hera_runtime.sessions
        dispatcher = celery_dispatcher(system.app)
        ids, queued = [], []
        with session_scope(sessions) as session:
            tenants = TenantRepository(session)
            tenant = tenants.by_name("bench") or tenants.create("bench")
            for task in tasks:
                row = RequestRepository(session).add(
                    tenant_id=tenant.id,
                    input=task.request,
                    policy="hera",
                    custom_id=task.id,
                    gold_answer=task.gold,
                    meta={"metric": task.metric, "family": task.family},
                )
                ids.append(row.id)
                queued.append(
                    dispatcher.enqueue(
                        session, TaskName.PLAN_STEP, {"request_id": str(row.id), "seq": 0}, plan_task_id(row.id, 0)
                    )
                )
        dispatcher.publish(queued)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            with session_scope(system.app.hera_runtime.read_sessions) as session:
                rows = RequestRepository(session).list_by_ids(ids)
                if all(r.status.value in TERMINAL for r in rows):
                    break
            time.sleep(0.5)
    return ids


class TrainingLoad:
    """``hera-router train dp`` in its own process, restarted whenever it finishes, until stopped."""

    def __init__(self, priority: str) -> None:
        self.priority = priority
        self.runs = 0
        self._stop = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._training = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TrainingLoad:
        self._thread.start()
        if not self._training.wait(900):
            raise RuntimeError("the training job never reached its first epoch")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
        self._thread.join(60)

    def _loop(self) -> None:
        env = {**os.environ, "HERA_ESTIMATORS__TRAINING_PRIORITY": self.priority}
        env.pop("HERA_ESTIMATORS__TORCH_THREADS", None)  # a trainer keeps torch's default
        while not self._stop.is_set():
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hera_router.cli", "train", "dp"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert self._process.stdout is not None
            for line in self._process.stdout:
                if "epoch" in line:
                    self._training.set()
            self._process.wait()
            self.runs += 1


def load_records(
    runtime: Runtime, ids: Sequence[uuid.UUID]
) -> tuple[list[Request], dict[uuid.UUID, list[Decision]], dict[uuid.UUID, list[Subtask]]]:
    with session_scope(runtime.sessions) as session:
        requests = list(RequestRepository(session).list_by_ids(ids))
        decisions = {i: list(DecisionRepository(session).list_for_request(i)) for i in ids}
        subtasks = {i: list(SubtaskRepository(session).list_for_request(i)) for i in ids}
        session.expunge_all()
    return requests, decisions, subtasks


def contexts_of(
    requests: Sequence[Request], subtasks: dict[uuid.UUID, list[Subtask]], max_steps: int
) -> list[RoutingContext]:
    out = []
    for request in requests:
        steps = sorted((s for s in subtasks[request.id] if s.part == 0 and s.text), key=lambda s: s.seq)
        history: list[Step] = []
        for step in steps:
            out.append(
                RoutingContext(
                    request_id=str(request.id),
                    request=request.input,
                    current=step.text,
                    seq=step.seq,
                    history=tuple(history),
                    max_steps=max_steps,
                )
            )
            history.append(Step(step.text, step.output or "", step.executor, step.confidence))
    return out


def throughput(policy: HeraPolicy, estimators: Estimators, contexts: Sequence[RoutingContext], threads: int) -> float:
    """Decisions per second with ``threads`` threads sharing ``estimators`` (URC cache cold)."""
    policy._urc_scores.clear()
    work = list(contexts)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                context = work.pop()
            policy.decide(context, estimators)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return len(contexts) / (time.perf_counter() - started)


def latency_report(
    requests: Sequence[Request],
    decisions: dict[uuid.UUID, list[Decision]],
    subtasks: dict[uuid.UUID, list[Subtask]],
    sd_call_s: float,
) -> None:
    by_branch: dict[str, list[float]] = defaultdict(list)
    shares, total_decision_s, total_model_s = [], 0.0, 0.0
    sd_calls = 0
    for request in requests:
        decision_s = 0.0
        for d in decisions[request.id]:
            asked_sd = "sd_parts" in d.scores
            sd_calls += asked_sd
            ms = d.elapsed_ms + (sd_call_s * 1e3 if asked_sd else 0.0)
            by_branch[d.branch].append(ms)
            # The verify stage's own time (a router hop after the SLM step) is decision time too.
            verify_ms = float(d.scores.get("verify_ms", 0.0))
            if "verify_score" in d.scores:
                by_branch["verify (stage)"].append(verify_ms)
            decision_s += (ms + verify_ms) / 1e3
        rows = subtasks[request.id]
        executed = [s for s in rows if not any(c.parent_id == s.id for c in rows)]
        # An escalated step ran on the edge first: its edge time counts in the latency.
        model_s = sum(
            (EDGE_S + CLOUD_S if s.branch == "verify" else CLOUD_S) if s.executor is Executor.LLM else EDGE_S
            for s in executed
        )
        shares.append(decision_s / (decision_s + model_s) if model_s else 0.0)
        total_decision_s += decision_s
        total_model_s += model_s
    print("| branch | decisions | p50 ms | p99 ms | mean ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    everything = [ms for values in by_branch.values() for ms in values]
    for branch, values in [*sorted(by_branch.items()), ("all", everything)]:
        print(
            f"| {branch} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
            f"{statistics.fmean(values):.1f} |"
        )
    print(
        f"\nSD asked in {sd_calls} decisions, each charged {sd_call_s:.1f} s for its edge call "
        "(the simulated edge answers in microseconds)."
    )
    print(
        f"decision share of end-to-end time (edge {EDGE_S} s/step, cloud {CLOUD_S} s/step): "
        f"overall {total_decision_s / (total_decision_s + total_model_s):.2%}, "
        f"per-request median {statistics.median(shares):.2%}, p90 {percentile(shares, 90):.2%}"
    )
    without_sd = sum(
        (d.elapsed_ms + float(d.scores.get("verify_ms", 0.0))) / 1e3 for ds in decisions.values() for d in ds
    )
    print(
        f"the same without the SD edge calls (encoders and policy only): "
        f"{without_sd / (without_sd + total_model_s):.2%}\n"
    )


def throughput_report(settings: Settings, contexts: Sequence[RoutingContext], threads: int, repeats: int) -> None:
    def estimators_with(max_batch: int) -> Estimators:
        # No SBERT cache: the second run must not find the first one's embeddings cached.
        estimators = settings.estimators.model_copy(update={"micro_batch_max": max_batch, "similarity_cache_size": 0})
        bundle = RegistryEstimatorSource(Runtime(settings.model_copy(update={"estimators": estimators})))()
        assert bundle is not None, "no active estimators: run `hera-router bootstrap` with this HERA_DATA_DIR"
        return bundle

    from hera_router.estimators import similarity

    similarity.reset_shared_embedder()  # the latency run created it with a cache
    plain = estimators_with(1)
    batched = estimators_with(32)
    # No URC (it is cached per request and would short-cut whole requests) and no SD (an edge
    # call): what is left is the per-step encoder work, SBERT for the roll-outs and DP for SLE.
    policy = HeraPolicy(settings.routing.model_copy(update={"use_urc": False, "use_sd": False}))
    throughput(policy, plain, contexts[:20], 1)  # warm-up
    throughput(policy, batched, contexts[:20], 1)
    print(f"throughput over {len(contexts)} step contexts, {threads} threads, URC and SD off (decisions/s):\n")
    print("| run | plain | micro-batched | ratio |")
    print("| --- | ---: | ---: | ---: |")
    ratios = []
    for repeat in range(repeats):
        a = throughput(policy, plain, contexts, threads)
        b = throughput(policy, batched, contexts, threads)
        ratios.append(b / a)
        print(f"| {repeat + 1} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")
    stats = {
        "URC": batched.urc.batcher.stats,  # type: ignore[attr-defined]
        "DP": batched.dp.batcher.stats,  # type: ignore[attr-defined]
        "SBERT (SP roll-outs)": batched.sp_slm.embedder.batcher.stats,  # type: ignore[attr-defined]
    }
    sizes = ", ".join(f"{name} {s.mean_batch:.1f} (largest {s.largest})" for name, s in stats.items())
    print(f"\nmean batch size: {sizes}")
    single = throughput(policy, plain, contexts, 1)
    print(f"one thread, plain: {single:.1f} decisions/s")
    print(f"median ratio micro-batched / plain at {threads} threads: {statistics.median(ratios):.2f}x")


def agreement_report(settings: Settings, contexts: Sequence[RoutingContext]) -> None:
    """The same step contexts decided with the SBERT pass on torch and on ONNX Runtime: how many
    decisions (executor and branch) differ, and the per-pass time of each, in the same process."""
    from hera_router.estimators import similarity

    bundles, seconds = {}, {}
    policy = HeraPolicy(settings.routing)
    for runtime in ("torch", "onnx"):
        similarity.reset_shared_embedder()  # a fresh embedder per runtime, cache off
        estimators = settings.estimators.model_copy(
            update={"encoder_runtime": runtime, "micro_batch_max": 1, "similarity_cache_size": 0}
        )
        bundle = RegistryEstimatorSource(Runtime(settings.model_copy(update={"estimators": estimators})))()
        assert bundle is not None, "no active estimators: run `hera-router bootstrap` with this HERA_DATA_DIR"
        embedder = bundle.sp_slm.embedder  # type: ignore[attr-defined]
        assert embedder.runtime == runtime, f"asked for {runtime}, the embedder runs {embedder.runtime}"
        texts = [c.current for c in contexts]
        embedder.embed_many(texts[:5])  # warm-up
        started = time.perf_counter()
        for text in texts:
            embedder.embed_many([text])
        seconds[runtime] = (time.perf_counter() - started) / len(texts)
        policy._urc_scores.clear()
        bundles[runtime] = [policy.decide(c, bundle) for c in contexts]
    differ = [
        (a.executor, a.branch, b.executor, b.branch)
        for a, b in zip(bundles["torch"], bundles["onnx"], strict=True)
        if (a.executor, a.branch) != (b.executor, b.branch)
    ]
    print(f"SBERT runtime: {len(contexts)} step contexts decided with the pass on torch and on ONNX Runtime")
    print(
        f"- decisions that differ (executor or branch): {len(differ)} of {len(contexts)}"
        + (f" ({differ[:5]})" if differ else "")
    )
    print(
        f"- one SBERT pass, batch 1: torch {seconds['torch'] * 1e3:.1f} ms, "
        f"ONNX Runtime {seconds['onnx'] * 1e3:.1f} ms ({seconds['torch'] / seconds['onnx']:.2f}x)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sd-call-s", type=float, default=EDGE_S)
    parser.add_argument("--training-load", choices=("none", "normal", "nice", "idle"), default="none")
    parser.add_argument("--agreement", action="store_true", help="decide every context on torch and on ONNX")
    args = parser.parse_args()
    settings = load_settings().model_copy(update={"mode": Mode.EMBEDDED, "broker_url": "memory://"})
    print("# HERA decisions with the real bootstrapped estimators (SIMULATED world)\n")
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}; data dir {settings.data_dir}")
    if args.training_load == "none":
        ids = run_requests(settings, args.n, args.seed)
    else:
        with TrainingLoad(args.training_load) as training:
            print(
                f"training load: `hera-router train dp` at priority {args.training_load}, load {os.getloadavg()[0]:.1f}"
            )
            ids = run_requests(settings, args.n, args.seed)
            print(f"training runs finished during the latency run: {training.runs}")
    requests, decisions, subtasks = load_records(Runtime(settings), ids)
    versions = next(d.estimator_versions for ds in decisions.values() for d in ds)
    print(f"{len(requests)} requests, seed {args.seed}, estimator versions {versions}\n")
    import torch

    print(f"torch threads in this process: {torch.get_num_threads()} (HERA_ESTIMATORS__TORCH_THREADS)")
    print(f"SBERT pass on: {settings.estimators.encoder_runtime} (HERA_ESTIMATORS__ENCODER_RUNTIME)\n")
    latency_report(requests, decisions, subtasks, args.sd_call_s)
    print(f"load average after the latency run: {os.getloadavg()[0]:.1f}\n")
    contexts = contexts_of(requests, subtasks, settings.routing.max_steps)
    if args.agreement:
        agreement_report(settings, contexts)
    if args.repeats > 0:
        throughput_report(settings, contexts, args.threads, args.repeats)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
