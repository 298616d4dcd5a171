"""benchmarks/results/chaos.md from the outcomes of one chaos run."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime

from tests.chaos.harness import Outcome, load_json
from tests.chaos.targets import (
    RECOVERY_TARGET_S,
    SLOWDOWN_TARGET,
    enforced,
    invariant_failures,
    recovery_limit_s,
    target_misses,
)

COMMAND = "make chaos   # = HERA_CHAOS_RESULTS=benchmarks/results/chaos.md .venv/bin/pytest -m chaos tests/chaos"


def _recovery(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def render(outcomes: Sequence[Outcome]) -> str:
    baseline_outcome = next((o for o in outcomes if o.scenario == "baseline"), None)
    baseline = baseline_outcome.wall_s if baseline_outcome is not None else None
    lines = [
        "# Chaos suite: faults against a distributed deployment",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}), with",
        "",
        "```bash",
        COMMAND,
        "```",
        "",
        "Each scenario: a fresh database on a private Postgres, a private Redis (or a fresh RabbitMQ vhost),",
        "`hera-router` processes for router (prefork -c 2), edge (prefork -c 3), cloud (threads -c 8),",
        "maintenance (threads -c 2) and beat, loopback model servers with 0.3 s (edge) / 0.6 s (cloud)",
        "latency, the `random` policy on simulated `mixed` requests, **default recovery settings**. The",
        "harness restarts a process whose main process it killed (as compose/systemd would).",
        "",
        "| scenario | broker | requests | wall s | × fault-free | unfinished | dup. rows | double charges "
        "| stored cost = calls | calls served | calls on record (ok, discarded, unknown) | unrecorded "
        "| max recovery s | restarts "
        "| unrecoverable |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        ratio = f"{o.wall_s / baseline:.2f}" if baseline else "–"
        cost_ok = "yes" if not o.cost_mismatches and abs(o.stored_cost_usd - o.calls_cost_usd) < 1e-6 else "**no**"
        lines.append(
            f"| {o.scenario} | {o.broker} | {o.requests} | {o.wall_s:.0f} | {ratio} | {o.unfinished} "
            f"| {o.duplicate_subtasks + o.duplicate_decisions} | {o.double_charged_steps} | {cost_ok} "
            f"| {o.calls_served} | {o.calls_recorded_ok} | {o.unrecorded_calls} | {_recovery(o.max_recovery_s)} "
            f"| {sum(o.restarts.values())} | {o.unrecoverable_errors} |"
        )
    lines += [
        "",
        "*Recovery*: for each fault, seconds from the fault clearing until every request unfinished at that",
        "moment has progressed (a new step, a new call, or finished). The baseline's value is the same",
        "measure at an arbitrary moment without a fault: how long the slowest in-flight request waits for",
        "its next hop anyway, with ~200 requests sharing 13 worker slots.",
        "",
        "## Per fault",
        "",
    ]
    for o in outcomes:
        events = ", ".join(f"{label}: {_recovery(value)} s" for label, value in o.recoveries) or "–"
        lines.append(f"- **{o.scenario}**: {events}")
        for note in o.notes:
            lines.append(f"  - note: {note}")
    lines += ["", "## Invariants (asserted) and issue 16's targets (reported)", ""]
    active = enforced()
    for o in outcomes:
        failures = invariant_failures(o)
        misses = target_misses(o, baseline_outcome)
        state = "hold" if not failures else "**FAIL**: " + "; ".join(failures)
        missed = "; ".join(
            f"{text} ({'enforced' if name in active else 'not enforced yet'})" for name, text in misses.items()
        )
        lines.append(f"- **{o.scenario}**: invariants {state}; targets: {missed or 'met'}")
    lines += [
        "",
        f"Targets: recovery ≤ {RECOVERY_TARGET_S:.0f} s after any fault on top of the fault-free",
        f"floor (here ≤ {recovery_limit_s(baseline_outcome):.0f} s); calls served = calls on",
        f"record; the kills batch within {SLOWDOWN_TARGET}× its fault-free time. Asserted by default",
        "(tests/chaos/targets.py; `HERA_CHAOS_ENFORCE` names extra ones).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # Re-render the markdown from a run's JSON: python -m tests.chaos.report benchmarks/results/chaos.json
    import sys
    from pathlib import Path

    source = Path(sys.argv[1])
    source.with_suffix(".md").write_text(render(load_json(source)))
