"""``hera-router eval matrix``: every registered policy on several simulated worlds, one table each
plus the mean, and HERA against HybridLLM and Random at HERA's own SLM share.

Each world is set up and replayed by ``world_replay`` (the bootstrap exactly as
``hera-router bootstrap`` runs it for a user, the fitted baselines, every policy on a held-out
evaluation profile, the equal-share comparison). This module adds what needs every world: the
mean over worlds, the partial-against-all-or-nothing SD table, and the pages.

Intervals are 95 % percentile bootstraps over requests (``stats``). The mean over worlds resamples
requests within each world and averages the worlds' statistics (a stratified bootstrap), so a world
with more requests does not weigh more. Everything here is SIMULATED.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.evaluation.render import LABEL, banner, clean, pct_ci, ratio_ci, table, write_results
from hera_router.evaluation.stats import (
    Columns,
    Vector,
    nanmean_rows,
    percentile_interval,
    quiet,
    ratio_of_sums,
    resample_indices,
)
from hera_router.evaluation.world_replay import (
    WorldConfig,
    WorldResult,
    equal_share_table,
    policies_to_replay,
    run_world,
    to_json_world,
    world_table,
)
from hera_router.evaluation.worlds import (
    Progress,
)

if TYPE_CHECKING:
    from hera_router.config import Settings


# -- configuration and results -------------------------------------------------------------------


@dataclass
class MatrixResult:
    worlds: list[WorldResult]
    mean_rows: list[dict[str, Any]]
    mean_equal_share: list[dict[str, Any]]
    seconds: float
    out: Path


# -- one world -----------------------------------------------------------------------------------


# -- statistics ----------------------------------------------------------------------------------


def mean_rows(worlds: Sequence[WorldResult], resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per policy, the mean over worlds of accuracy, SLM share, cost, steps and decision time, with
    stratified bootstrap intervals (requests resampled within each world, worlds averaged)."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(row.policy for world in worlds for row in world.rows))
    rows: list[dict[str, Any]] = []
    for name in names:
        per_world = [Columns.of(world.outcomes.get(name, []), world.all_llm_cost) for world in worlds]
        present = [c for c in per_world if c.keys]
        if len(present) < len(worlds):
            rows.append({"policy": name, "worlds": len(present), "note": "not evaluated on every world"})
            continue
        samples: dict[str, list[Vector]] = {k: [] for k in ("accuracy", "slm_share", "cost", "steps", "decision_ms")}
        point: dict[str, list[float]] = {k: [] for k in samples}
        with quiet():
            for columns in present:
                index = resample_indices(len(columns.keys), resamples, rng)
                samples["accuracy"].append(columns.score[index].mean(axis=1))
                samples["slm_share"].append(nanmean_rows(columns.share[index]))
                samples["cost"].append(ratio_of_sums(columns.cost[index], columns.reference[index]))
                samples["steps"].append(columns.steps[index].mean(axis=1))
                samples["decision_ms"].append(1e3 * ratio_of_sums(columns.decision_s[index], columns.steps[index]))
                point["accuracy"].append(float(columns.score.mean()))
                point["slm_share"].append(float(np.nanmean(columns.share)))
                point["cost"].append(float(ratio_of_sums(columns.cost, columns.reference)))
                point["steps"].append(float(columns.steps.mean()))
                point["decision_ms"].append(float(1e3 * ratio_of_sums(columns.decision_s, columns.steps)))
            row: dict[str, Any] = {"policy": name, "worlds": len(present)}
            for key, drawn in samples.items():
                row[key] = float(np.mean(point[key]))
                row[f"{key}_ci"] = percentile_interval(np.mean(np.stack(drawn), axis=0))
        rows.append(row)
    return rows


def mean_equal_share(worlds: Sequence[WorldResult]) -> list[dict[str, Any]]:
    """Per HERA variant, the mean over worlds of its equal-share comparison (intervals: the mean of
    the per-world interval ends, a conservative summary; every world's own interval is in its table)."""
    names = list(dict.fromkeys(e.policy for world in worlds for e in world.equal_share))
    rows = []
    for name in names:
        found = [e for world in worlds for e in world.equal_share if e.policy == name]
        if len(found) < len(worlds):
            continue

        def mean(values: Sequence[float]) -> float:
            return float(np.mean(values))

        rows.append(
            {
                "policy": name,
                "worlds": len(found),
                "slm_share": mean([e.slm_share for e in found]),
                "accuracy": mean([e.accuracy for e in found]),
                "hybrid_accuracy": mean([e.hybrid_accuracy for e in found]),
                "random_accuracy": mean([e.random_accuracy for e in found]),
                "delta_hybrid": mean([e.delta_hybrid for e in found]),
                "delta_hybrid_ci": (
                    mean([e.delta_hybrid_ci[0] for e in found]),
                    mean([e.delta_hybrid_ci[1] for e in found]),
                ),
                "delta_random": mean([e.delta_random for e in found]),
                "delta_random_ci": (
                    mean([e.delta_random_ci[0] for e in found]),
                    mean([e.delta_random_ci[1] for e in found]),
                ),
                "worlds_hera_ahead_of_hybrid_by_5": sum(e.delta_hybrid >= 0.05 for e in found),
                "worlds_hera_ahead_of_random": sum(e.delta_random > 0 for e in found),
            }
        )
    return rows


# -- the whole matrix ----------------------------------------------------------------------------


def build_matrix(base: Settings, config: WorldConfig, progress: Progress | None = None) -> MatrixResult:
    progress = progress or Progress()
    if base.edge.backend != "sim" or base.cloud.backend != "sim":
        raise ValueError(
            "`eval matrix` runs on the simulated world; set HERA_EDGE__BACKEND and HERA_CLOUD__BACKEND to sim"
        )
    from hera_router.simulator.presets import load_behaviour

    for preset in config.worlds:
        load_behaviour(preset, base.simulator.config_path)  # an unknown preset fails before any work
    policies_to_replay(config)
    started = time.perf_counter()
    config.workdir.mkdir(parents=True, exist_ok=True)
    worlds: list[WorldResult] = []
    pairs = [(preset, seed) for preset in config.worlds for seed in config.seeds]
    for number, (preset, seed) in enumerate(pairs, start=1):
        progress.log(f"[bold]world {number}/{len(pairs)}: preset {preset}, seed {seed}[/]")
        world = run_world(base, preset, seed, config, progress)
        worlds.append(world)
        progress.log(f"world {preset} / seed {seed} done in {world.info['seconds']:.0f} s")
    result = MatrixResult(
        worlds, mean_rows(worlds, config.resamples), mean_equal_share(worlds), time.perf_counter() - started, config.out
    )
    write_matrix(result, config)
    return result


# -- writing -------------------------------------------------------------------------------------


SD_PAIRS = (("hera", "hera-sd-partial"), ("hera-paper", "hera-paper-sd-partial"))
"""All-or-nothing SD next to partial SD, per world."""


def sd_table(worlds: Sequence[WorldResult]) -> str:
    """Per world and pair: SLM share and accuracy of all-or-nothing and partial SD side by side."""
    headers = ["world", "all-or-nothing", "accuracy %", "SLM share %", "partial", "accuracy %", "SLM share %"]
    rows = []
    for world in worlds:
        by = {m.policy: m for m in world.rows}
        for whole, partial in SD_PAIRS:
            if whole not in by or partial not in by:
                continue
            a, b = by[whole], by[partial]
            calls = sum(1 for o in world.outcomes.get(partial, []) for s in o.steps if s.branch == "sd")
            rows.append(
                [
                    world.name,
                    f"`{whole}`",
                    pct_ci(a.accuracy, a.accuracy_ci),
                    pct_ci(a.slm_usage, a.slm_usage_ci),
                    f"`{partial}`",
                    pct_ci(b.accuracy, b.accuracy_ci),
                    pct_ci(b.slm_usage, b.slm_usage_ci),
                    calls,
                ]
            )
    return table([*headers, "SD part calls (partial)"], rows) if rows else ""


def mean_table(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ["policy", "worlds", "accuracy % [95% CI]", "SLM share % [95% CI]", "remote cost vs All-LLM [95% CI]"]
    cells = []
    for r in rows:
        if "accuracy" not in r:
            cells.append([f"`{r['policy']}`", r["worlds"], r.get("note", ""), "", "", "", ""])
            continue
        cells.append(
            [
                f"`{r['policy']}`",
                r["worlds"],
                pct_ci(r["accuracy"], r["accuracy_ci"]),
                pct_ci(r["slm_share"], r["slm_share_ci"]),
                ratio_ci(r["cost"], r["cost_ci"]),
                f"{r['steps']:.2f}",
                f"{r['decision_ms']:.2f}",
            ]
        )
    return table([*headers, "steps/req", "decision ms/step"], cells)


def console_table(title: str, rows: Sequence[Mapping[str, Any]]) -> Any:
    """A compact rich table (no intervals) of per-world or mean rows; the files hold the intervals."""
    from rich.table import Table

    table = Table(title=f"{title} ({LABEL})", title_justify="left")
    for header in ("policy", "accuracy %", "SLM share %", "cost vs All-LLM", "steps", "decision ms/step"):
        table.add_column(header, justify="left" if header == "policy" else "right")

    def number(value: Any, scale: float = 1.0, digits: int = 1) -> str:
        return (
            "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{scale * value:.{digits}f}"
        )

    for r in rows:
        share = r.get("slm_share", r.get("slm_usage"))
        steps = r.get("steps", r.get("subtasks_per_request"))
        table.add_row(
            str(r["policy"]),
            number(r.get("accuracy"), 100),
            number(share, 100),
            number(r.get("cost"), digits=2),
            number(steps, digits=2),
            number(r.get("decision_ms"), digits=2),
        )
    return table


def _versions(versions: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} v{v}" for k, v in sorted(versions.items())) or "none"


def render_markdown(result: MatrixResult, config: WorldConfig) -> str:
    from hera_router.routing.hera import VARIANTS

    held_out = "arithmetic" if config.train_family == "lookup" else "the other family"
    parts = [
        f"# Evaluation matrix ({LABEL})",
        "",
        banner(),
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} in {result.seconds:.0f} s by:",
        "",
        f"```\n{config.command or 'hera-router eval matrix'}\n```",
        "",
        f"Worlds: {', '.join(w.name for w in result.worlds)}. Per world: `bootstrap` on {config.train_n} "
        f"`{config.train_family}` requests (profile, train, calibrate, promote), HybridLLM fitted on that profile, "
        f"Oracle searched on the evaluation profile; {config.eval_n} `{config.eval_family}` evaluation requests "
        f"from offset {config.train_n} ({held_out} held out). Replay with steps the profiles lack run on the "
        "simulated backends. 95 % intervals: bootstrap over requests (per world), stratified by world for the mean. "
        "Decision ms/step: routing time over executed steps (a span's covered steps count at 0).",
        "",
        f"## Mean over {len(result.worlds)} worlds ({LABEL})",
        "",
        mean_table(result.mean_rows),
        "",
        f"## At HERA's SLM share, mean over worlds ({LABEL})",
        "",
        "HybridLLM's threshold swept and its accuracy interpolated at each HERA variant's SLM share; Random "
        "replayed with p = that share. Deltas in accuracy points; intervals: mean of the per-world paired "
        "bootstrap interval ends. Target: `hera` ≥ HybridLLM@share + 5 and > Random@share on every world.",
        "",
        equal_share_table(result.mean_equal_share),
        "",
    ]
    if table := sd_table(result.worlds):
        parts += [
            f"## Partial decomposition against all-or-nothing, per world ({LABEL})",
            "",
            "Decomposed steps run part by part on the simulator (each part on its executor). SD part calls: "
            "model calls of decomposition parts under the partial policy. The graph family: "
            "`hera-router eval graphs` (reports/issue19-graphs/).",
            "",
            table,
            "",
        ]
    for world in result.worlds:
        parts += [
            f"## World {world.name} ({LABEL})",
            "",
            f"{world.info.get('requests')} evaluation requests; {world.info.get('extension_steps')} steps run on the "
            f"simulator beyond the profiles; HybridLLM tuned threshold {world.info.get('hybridllm_threshold', 0):.3f}; "
            f"estimators {_versions(world.info.get('estimator_versions', {}))}; "
            f"{world.info.get('seconds', 0):.0f} s.",
            "",
            world_table(world),
            "",
            f"At equal SLM share ({LABEL}):",
            "",
            equal_share_table([e.to_json() for e in world.equal_share])
            if world.equal_share
            else "No HERA variant could be replayed on this world (see the notes above).",
            "",
            f"![accuracy vs SLM share]({world.slug}.png)",
            "",
        ]
    missing = [n for n in VARIANTS if all(n not in w.outcomes for w in result.worlds)]
    if missing and not config.policies:
        parts += [f"Registered HERA variants not replayed: {', '.join(missing)}.", ""]
    return "\n".join(parts)


def to_json(result: MatrixResult, config: WorldConfig) -> dict[str, Any]:
    cleaned: dict[str, Any] = clean(
        {
            "label": LABEL,
            "command": config.command,
            "seconds": round(result.seconds, 1),
            "config": {
                "worlds": list(config.worlds),
                "seeds": list(config.seeds),
                "train_family": config.train_family,
                "eval_family": config.eval_family,
                "train_n": config.train_n,
                "eval_n": config.eval_n,
                "node_budget": config.node_budget,
                "resamples": config.resamples,
            },
            "mean": result.mean_rows,
            "mean_equal_share": result.mean_equal_share,
            "worlds": [to_json_world(w) for w in result.worlds],
        }
    )
    return cleaned


def write_matrix(result: MatrixResult, config: WorldConfig) -> None:
    from hera_router.evaluation import plots

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(render_markdown(result, config), encoding="utf-8")
    write_results(out / "results.json", to_json(result, config))
    for world in result.worlds:
        plots.share_plot(
            world.rows,
            [m for _t, m in world.hybrid_sweep],
            out / f"{world.slug}.png",
            title=f"{LABEL}: accuracy vs SLM share, world {world.name}",
        )
