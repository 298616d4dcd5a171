"""What every scenario must show (invariants, always asserted) and the recovery targets.

The targets rest on the pipeline's recovery design: liveness-based re-drive (worker heartbeats,
queue depths) and every model call on record before it is made. They are asserted by default;
``HERA_CHAOS_ENFORCE`` can name extra ones (comma-separated: ``recovery,calls,slowdown``, or
``all``).
"""

from __future__ import annotations

import os

from tests.chaos.harness import Outcome

RECOVERY_TARGET_S = 15.0
"""After any single fault clears, every request is moving again within this,
on top of the fault-free floor: with ~200 requests sharing 13 worker slots, the slowest in-flight
request waits for its next hop ~30 s even without a fault (the baseline scenario measures it at an
arbitrary moment), so a fault is recovered when every request moved within floor + 15 s."""
SLOWDOWN_TARGET = 1.5
"""Under 10 SIGKILLs the batch finishes within this multiple of its fault-free time."""

TARGETS = ("recovery", "calls", "slowdown")
ENFORCED_BY_DEFAULT: frozenset[str] = frozenset(TARGETS)


def enforced() -> frozenset[str]:
    names = {name.strip() for name in os.environ.get("HERA_CHAOS_ENFORCE", "").split(",") if name.strip()}
    if "all" in names:
        return frozenset(TARGETS)
    unknown = names - set(TARGETS)
    if unknown:
        raise ValueError(f"HERA_CHAOS_ENFORCE: unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}, all")
    return ENFORCED_BY_DEFAULT | names


def invariant_failures(outcome: Outcome) -> list[str]:
    """What must hold today, under every fault."""
    failures = []
    if outcome.unfinished:
        failures.append(f"{outcome.unfinished} requests unfinished: {outcome.statuses}")
    if outcome.duplicate_subtasks or outcome.duplicate_decisions:
        failures.append(
            f"duplicates: {outcome.duplicate_subtasks} subtask, {outcome.duplicate_decisions} decision groups"
        )
    if outcome.double_charged_steps:
        failures.append(f"{outcome.double_charged_steps} steps charged twice")
    if outcome.cost_mismatches or abs(outcome.stored_cost_usd - outcome.calls_cost_usd) > 1e-6:
        failures.append(
            f"stored cost {outcome.stored_cost_usd:.6f} != sum of calls {outcome.calls_cost_usd:.6f} "
            f"({outcome.cost_mismatches} requests differ)"
        )
    if outcome.unrecoverable_errors:
        failures.append(f"{outcome.unrecoverable_errors} 'Unrecoverable error' in the worker logs")
    dead = [kind for kind, alive in outcome.workers_alive.items() if not alive]
    if dead:
        failures.append(f"processes dead at the end: {dead}")
    return failures


def recovery_limit_s(baseline: Outcome | None) -> float:
    """The recovery target in seconds: 15 s on top of the fault-free floor (see RECOVERY_TARGET_S)."""
    floor = baseline.max_recovery_s if baseline is not None else None
    return RECOVERY_TARGET_S + (floor or 0.0)


def target_misses(outcome: Outcome, baseline: Outcome | None) -> dict[str, str]:
    """The recovery targets this outcome misses, by name (empty: all met)."""
    misses: dict[str, str] = {}
    recovery = outcome.max_recovery_s
    limit = recovery_limit_s(baseline)
    if outcome.scenario != "baseline" and (recovery is None or recovery > limit):
        shown = "never" if recovery is None else f"{recovery:.1f} s"
        misses["recovery"] = f"recovery {shown} > {limit:.0f} s (fault-free floor + {RECOVERY_TARGET_S:.0f} s)"
    if outcome.unrecorded_calls != 0:
        misses["calls"] = f"calls served {outcome.calls_served} > calls on record {outcome.calls_recorded_ok}"
    if outcome.scenario == "kills" and baseline is not None:
        ratio = outcome.wall_s / baseline.wall_s
        if ratio > SLOWDOWN_TARGET:
            misses["slowdown"] = f"batch took {ratio:.2f}× its fault-free time (> {SLOWDOWN_TARGET}×)"
    return misses
