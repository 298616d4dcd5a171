"""One nightly continual fine-tuning cycle on drifted SIMULATED traffic: DP accuracy before/after.

1. Bootstrap: profile ``--bootstrap-n`` simulated requests with the bootstrap preset (``default``),
   train DP on them and promote it (the "active" version).
2. Drift: ``--drift-n`` live requests of the same family, answered in a world whose SLM behaves
   per ``--drift-preset``, each expanded into a shadow tree (what ``training.shadow_request``
   does for the sampled share of live traffic).
3. One nightly run (``training/continual.py``): LoRA update of DP from the active adapter on the
   shadow labels, gate on the held-out slice, promotion.
4. Both versions are also measured on ``--test-n`` further drifted requests profiled separately
   (never seen by the run), next to the majority-class baseline.

Every number is SIMULATED. Usage:

    .venv/bin/python benchmarks/bench_continual.py --data-dir /tmp/hera-continual
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.db.repositories import EstimatorVersionRepository, RequestRepository, TenantRepository
from hera_router.db.runtime import Runtime
from hera_router.db.session import session_scope
from hera_router.training.continual import manual_slot, retrain
from hera_router.training.profiling import create_run, profile_run, run_config, simulated_items
from hera_router.training.shadow import shadow_request
from hera_router.training.trainers import evaluate_version, train_estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/hera-continual"))
    parser.add_argument("--family", default="lookup")
    parser.add_argument("--bootstrap-n", type=int, default=120)
    parser.add_argument("--drift-preset", default="weak-slm")
    parser.add_argument("--drift-n", type=int, default=200)
    parser.add_argument("--test-n", type=int, default=80)
    parser.add_argument("--min-labels", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/continual.json"))
    args = parser.parse_args()

    shutil.rmtree(args.data_dir, ignore_errors=True)
    started = time.perf_counter()
    estimators = {"profile_family": args.family, "profile_requests": args.bootstrap_n}
    base = load_settings(data_dir=args.data_dir, estimators=estimators)
    upgrade(base.database_url)
    runtime = Runtime(base)

    # 1. bootstrap: the default world
    boot = create_run(runtime.sessions, "bootstrap", "sim", run_config(base))
    profile_run(base, runtime.sessions, boot)
    trained = train_estimator(runtime, "dp", boot, progress=print)
    assert trained is not None
    with session_scope(runtime.sessions) as session:
        EstimatorVersionRepository(session).promote("dp", trained.version)
    print(f"bootstrap dp v{trained.version}: {trained.metrics['balanced_accuracy']:.3f} (default preset)")

    # 2. drifted live traffic → shadow trees (requests after the bootstrap's in the same family)
    drifted = load_settings(
        data_dir=args.data_dir,
        estimators=estimators,
        simulator={"preset": args.drift_preset},
        continual={"min_labels": args.min_labels, "shadow_daily_cost_cap_usd": 1e9},
    )
    drift_runtime = Runtime(drifted)
    items = simulated_items(drifted, args.family, args.drift_n, offset=args.bootstrap_n)
    ids: list[uuid.UUID] = []
    with session_scope(drift_runtime.sessions) as session:
        tenant = TenantRepository(session).create("bench-continual")
        for item in items:
            ids.append(RequestRepository(session).add(tenant_id=tenant.id, input=item.request, policy="all-llm").id)
    shadow_cost = sum(shadow_request(drift_runtime, request_id).cost_usd for request_id in ids)
    print(f"{len(ids)} shadow trees ({args.drift_preset}), shadow cost {shadow_cost:.4f} USD (simulated prices)")

    # 3. one nightly cycle
    [outcome] = retrain(drift_runtime, slot=manual_slot(time_now()), names=["dp"], progress=print)
    print(outcome.describe())

    # 4. an independent drifted test set
    test = create_run(
        drift_runtime.sessions,
        "drift-test",
        "sim",
        run_config(drifted, family=args.family, n=args.test_n, offset=args.bootstrap_n + args.drift_n),
    )
    profile_run(drifted, drift_runtime.sessions, test)
    rows: dict[str, Any] = {}
    versions = [trained.version] + ([outcome.version] if outcome.version is not None else [])
    for version in versions:
        rows[f"v{version}"] = evaluate_version(drift_runtime, "dp", version, test)
    result = {
        "simulated": True,
        "command": "benchmarks/bench_continual.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "family": args.family,
        "bootstrap_preset": "default",
        "drift_preset": args.drift_preset,
        "bootstrap_requests": args.bootstrap_n,
        "shadow_requests": args.drift_n,
        "test_requests": args.test_n,
        "shadow_cost_usd": shadow_cost,
        "outcome": {"status": outcome.status, "version": outcome.version, "reason": outcome.reason},
        "gate": {k: outcome.metrics.get(k) for k in ("metric", "candidate", "active", "labels")},
        "held_out_slice": {
            "active": outcome.metrics.get("active_metrics"),
            "candidate": outcome.metrics.get("candidate_metrics"),
        },
        "test_set": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print("\nSIMULATED, drifted test set (DP):")
    print(f"{'version':10} {'balanced':>9} {'exact':>7} {'within1':>8} {'majority-exact':>15}")
    for name, metrics in rows.items():
        print(
            f"{name:10} {metrics['balanced_accuracy']:9.3f} {metrics['exact']:7.3f} {metrics['within_1']:8.3f} "
            f"{metrics['baseline_exact']:15.3f}"
        )
    print(f"written {args.out} in {result['seconds']} s")
    runtime.close()
    drift_runtime.close()


def time_now() -> Any:
    from hera_router.db.base import utcnow

    return utcnow()


if __name__ == "__main__":
    main()
