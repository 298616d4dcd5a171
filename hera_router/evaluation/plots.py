"""Pareto plots of the sweeps (PNG, matplotlib's Agg backend: no display needed).

Two panels per sweep: accuracy vs SLM usage and accuracy vs remote cost (All-LLM = 1.0), the sweep's
points joined in threshold order and labelled with the threshold, and the All-SLM, All-LLM and
Oracle points drawn as references (plus any other policy passed in). The title carries the data
label ("SIMULATED" for the simulated world).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hera_router.evaluation.metrics import PolicyMetrics
from hera_router.evaluation.sweeps import SweepPoint

REFERENCE_STYLE = {
    "all-slm": ("s", "tab:red"),
    "all-llm": ("D", "tab:blue"),
    "oracle": ("*", "tab:green"),
    "hybridllm": ("^", "tab:purple"),
    "random": ("x", "tab:gray"),
    "minions": ("v", "tab:brown"),
}

LABELS = {"tau_req": "τ_req", "kappa_base": "κ base (subtask threshold)"}


def pareto_plot(
    points: Sequence[SweepPoint],
    references: Sequence[PolicyMetrics],
    path: Path,
    *,
    data_label: str,
    more: Mapping[str, Sequence[SweepPoint]] | None = None,
) -> Path:
    """Write the two-panel Pareto plot of one sweep to ``path`` (``more``: other labelled series)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parameter = points[0].parameter if points else "threshold"
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for axis, (field, xlabel) in zip(
        axes,
        (("slm_usage", "SLM usage (% of a request's subtasks)"), ("cost", "remote cost (All-LLM = 1.0)")),
        strict=True,
    ):
        scale = 100.0 if field == "slm_usage" else 1.0
        series = {f"hera (trained estimators), {LABELS.get(parameter, parameter)} sweep": points, **(more or {})}
        for (name, line), colour in zip(series.items(), ("tab:orange", "tab:cyan", "tab:olive"), strict=False):
            xs = [getattr(p.metrics, field) * scale for p in line]
            ys = [p.metrics.accuracy * 100 for p in line]
            axis.plot(xs, ys, "o-", color=colour, label=name)
            for p, x, y in zip(line, xs, ys, strict=True):
                if not (math.isnan(x) or math.isnan(y)):
                    axis.annotate(f"{p.value:.2f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for ref in references:
            x, y = getattr(ref, field) * scale, ref.accuracy * 100
            if math.isnan(x) or math.isnan(y):
                continue
            marker, colour = REFERENCE_STYLE.get(ref.policy, ("o", "black"))
            axis.scatter([x], [y], marker=marker, color=colour, s=70, label=ref.policy, zorder=3)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    figure.suptitle(f"{data_label}: accuracy vs SLM usage and vs cost, {LABELS.get(parameter, parameter)} sweep")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _policy_points(axis: Any, rows: Sequence[PolicyMetrics]) -> None:
    """Each policy as a point at (SLM share, accuracy); policies that land on the same point share
    one label (e.g. ablations that change nothing)."""
    labels: dict[tuple[float, float], list[str]] = {}
    for row in rows:
        x, y = row.slm_usage * 100, row.accuracy * 100
        if math.isnan(x) or math.isnan(y):
            continue
        marker, colour = REFERENCE_STYLE.get(row.policy, ("o", "tab:orange" if row.policy.startswith("hera") else "k"))
        axis.scatter([x], [y], marker=marker, color=colour, s=50, zorder=3)
        labels.setdefault((round(x, 1), round(y, 1)), []).append(row.policy)
    for (x, y), names in labels.items():
        text = "\n".join(", ".join(names[i : i + 3]) for i in range(0, len(names), 3))
        side = "right" if x > 80 else "left"
        axis.annotate(text, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, ha=side, va="bottom")


def policies_plot(rows: Sequence[PolicyMetrics], path: Path, *, data_label: str) -> Path:
    """Accuracy vs SLM usage of every policy and ablation in one scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8.5, 6), constrained_layout=True)
    _policy_points(axis, rows)
    axis.set_xlabel("SLM usage (% of a request's subtasks)")
    axis.set_ylabel("accuracy (%)")
    axis.grid(True, alpha=0.3)
    axis.set_title(f"{data_label}: policies and ablations")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def share_plot(rows: Sequence[PolicyMetrics], hybrid_sweep: Sequence[PolicyMetrics], path: Path, *, title: str) -> Path:
    """Accuracy vs SLM share of every policy in one world, with HybridLLM's threshold sweep as a line
    (the curve the equal-share comparison interpolates on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8.5, 6), constrained_layout=True)
    curve = sorted(
        (m.slm_usage * 100, m.accuracy * 100)
        for m in hybrid_sweep
        if not (math.isnan(m.slm_usage) or math.isnan(m.accuracy))
    )
    if curve:
        axis.plot(
            [x for x, _ in curve],
            [y for _, y in curve],
            "-",
            color="tab:purple",
            alpha=0.5,
            label="hybridllm, threshold sweep",
        )
    _policy_points(axis, rows)
    axis.set_xlabel("SLM share (% of a request's subtasks)")
    axis.set_ylabel("accuracy (%)")
    axis.grid(True, alpha=0.3)
    if curve:
        axis.legend(fontsize=8, loc="lower left")
    axis.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
