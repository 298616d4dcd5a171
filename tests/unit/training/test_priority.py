"""Training yields the CPU: the thread's scheduling policy inside and after ``yielding_cpu``.

Each case runs in a fresh interpreter: lowering the priority of pytest's own main thread could
outlive the test where the kernel refuses to raise it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")

PROBE = textwrap.dedent(
    """
    import json, os, sys, threading
    from hera_router.training.priority import current_priority, yielding_cpu

    def probe(priority):
        seen = {"before": current_priority()}
        with yielding_cpu(priority) as applied:
            seen["applied"] = applied
            seen["inside"] = current_priority()
            child = {}
            thread = threading.Thread(target=lambda: child.update(policy=current_priority()))
            thread.start(); thread.join()
            seen["child"] = child["policy"]
        seen["after"] = current_priority()
        return seen

    priority, where = sys.argv[1], sys.argv[2]
    if where == "main":
        result = probe(priority)
    else:
        box = {}
        worker = threading.Thread(target=lambda: box.update(result=probe(priority)))
        worker.start(); worker.join()
        result = box["result"]
    print(json.dumps(result))
    """
)


def run_probe(priority: str, where: str) -> dict[str, list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, priority, where], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, list[int]] = json.loads(done.stdout)
    return result


def test_idle_on_the_main_thread_runs_the_block_and_its_threads_at_sched_idle() -> None:
    seen = run_probe("idle", "main")
    assert seen["before"][0] == os.SCHED_OTHER
    assert seen["applied"] == "idle"
    assert seen["inside"][0] == os.SCHED_IDLE
    assert seen["child"][0] == os.SCHED_IDLE  # torch's workers, started by the training thread
    if os.geteuid() == 0:  # raising it back needs the privilege an ordinary worker lacks
        assert seen["after"] == seen["before"]


def test_nice_lowers_the_nice_value_only() -> None:
    seen = run_probe("nice", "main")
    assert seen["applied"] == "nice"
    assert seen["inside"] == [seen["before"][0], 19]
    assert seen["child"] == [seen["before"][0], 19]


def test_a_pool_thread_trains_at_normal_priority() -> None:
    """Beside serving threads in one process, a lowered GIL holder would stall them."""
    seen = run_probe("idle", "pool")
    assert seen["applied"] == "normal"
    assert seen["inside"] == seen["before"]


def test_normal_changes_nothing() -> None:
    seen = run_probe("normal", "main")
    assert seen["applied"] == "normal"
    assert seen["inside"] == seen["before"] == seen["after"]
