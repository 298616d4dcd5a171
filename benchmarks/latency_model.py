"""Every policy's request latency before and after a change of the simulator's latency model
(SIMULATED).

Reads two ``results.json`` files written by ``hera-router eval matrix`` on the same worlds and
bootstraps (the second run reuses the first one's ``--workdir``, so the routing is the same and
only the latency model differs) and writes one markdown page: per world and policy, accuracy,
SLM share, mean request latency and its ratio to All-LLM's, and the share of the request time
spent deciding, before → after.

    hera-router eval matrix -s 0 --workdir /tmp/lat/worlds --out /tmp/lat/before   # old presets
    cp -r /tmp/lat/worlds /tmp/lat/worlds-after                                      # new presets:
    hera-router eval matrix -s 0 --workdir /tmp/lat/worlds-after --out /tmp/lat/after
    python benchmarks/latency_model.py --before /tmp/lat/before/results.json \
        --after /tmp/lat/after/results.json --out reports/latency-model
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

POLICIES = (
    "all-slm",
    "all-llm",
    "random",
    "hybridllm",
    "minions",
    "oracle",
    "hera-paper",
    "hera",
    "hera-no-verify",
    "hera-no-sd",
    "hera-no-sle",
    "hera-no-cd",
    "hera-no-urc",
    "hera-urc-only",
)
"""Rows, in this order (a policy missing from either run is left out)."""

Rows = dict[tuple[str, int], dict[str, Mapping[str, Any]]]


def _rows(results: Mapping[str, Any]) -> Rows:
    out: Rows = {}
    for world in results["worlds"]:
        out[(world["preset"], int(world["seed"]))] = {p["policy"]: p for p in world["policies"] if not p.get("error")}
    return out


def _ratio(row: Mapping[str, Any], world: Mapping[str, Mapping[str, Any]]) -> float:
    return float(row["latency_s"]) / float(world["all-llm"]["latency_s"])


def _world_table(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| policy | accuracy % | SLM share % | latency s, before → after | vs All-LLM, before → after "
        "| deciding %, before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in POLICIES:
        if name not in before or name not in after:
            continue
        b, a = before[name], after[name]
        same = "" if (b["accuracy"], b["slm_usage"]) == (a["accuracy"], a["slm_usage"]) else " (changed)"
        lines.append(
            f"| `{name}` | {100 * a['accuracy']:.1f}{same} | {100 * a['slm_usage']:.1f} "
            f"| {b['latency_s']:.2f} → {a['latency_s']:.2f} "
            f"| {_ratio(b, before):.2f} → {_ratio(a, after):.2f} "
            f"| {100 * b['decision_share']:.1f} → {100 * a['decision_share']:.1f} |"
        )
    return lines


def _mean_table(before: Rows, after: Rows) -> list[str]:
    lines = [
        "| policy | worlds | latency vs All-LLM, before | after | HERA-paper's figure |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    paper = {
        "all-slm": "0.70 (11.14 s vs All-LLM's 15.82 s)",
        "hybridllm": "0.82 (12.98 s)",
        "minions": "0.90 (14.21 s)",
        "hera": "0.84 (13.33 s); 0.76-0.82 across its model pairs",
    }
    for name in POLICIES:
        worlds = [w for w in after if name in after[w] and name in before.get(w, {})]
        if not worlds:
            continue
        b = statistics.fmean(_ratio(before[w][name], before[w]) for w in worlds)
        a = statistics.fmean(_ratio(after[w][name], after[w]) for w in worlds)
        lines.append(f"| `{name}` | {len(worlds)} | {b:.2f} | {a:.2f} | {paper.get(name, '')} |")
    return lines


def render(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    rb, ra = _rows(before), _rows(after)
    lines = [
        "# The latency model, before and after (SIMULATED)",
        "",
        "> **SIMULATED.** Latency here is the simulator preset's latency model applied to each replayed",
        "> step's tokens, plus the measured decision time; no real model ran.",
        "",
        f"Before: `{before['command']}`.",
        "",
        f"After: `{after['command']}` (the same worlds and bootstraps, the new presets).",
        "",
        "Made by `benchmarks/latency_model.py` (its docstring has the commands). The latency model and",
        'its sources: docs/simulator-calibration.md, "Latency model". Decision time is wall-clock time',
        "measured during the replay, so it depends on the machine's load when each run was made.",
        "",
        "## Mean over the worlds: request latency ÷ All-LLM's",
        "",
        *_mean_table(rb, ra),
        "",
    ]
    for world in sorted(ra):
        if world not in rb:
            continue
        lines += [f"## {world[0]} / seed {world[1]}", "", *_world_table(rb[world], ra[world]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("reports/latency-model"))
    args = parser.parse_args()
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.before, args.out / "before.json")
    shutil.copyfile(args.after, args.out / "after.json")
    (args.out / "README.md").write_text(render(before, after) + "\n")
    print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
