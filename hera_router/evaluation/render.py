"""How every study writes its results: one markdown table writer, the number formats, the page
banner for simulated data, and one results-file writer (plain JSON, NaN and ±inf as null)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LABEL = "SIMULATED"
"""What every number measured on the simulator is labelled with."""

DASH = "–"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A markdown table; each cell is written with ``str`` (``|`` inside a cell becomes ``/``);
    the columns numbered in ``right`` are right-aligned."""
    rule = "".join("---:|" if i in right else "---|" for i in range(len(headers)))
    lines = ["| " + " | ".join(headers) + " |", "|" + rule]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def missing(value: float | None) -> bool:
    """No value: None (a null read back from a results file) or NaN."""
    return value is None or math.isnan(value)


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal (a dash when missing)."""
    return DASH if value is None or math.isnan(value) else f"{100 * value:.1f}"


def pct_ci(value: float | None, ci: Sequence[float | None]) -> str:
    """A share and its interval, in percent."""
    return DASH if missing(value) else f"{pct(value)} [{pct(ci[0])}, {pct(ci[1])}]"


def ratio_ci(value: float | None, ci: Sequence[float | None]) -> str:
    """A ratio and its interval, two decimals."""
    if value is None or math.isnan(value):
        return DASH
    return f"{value:.2f} [{number(ci[0])}, {number(ci[1])}]"


def points_ci(value: float | None, ci: Sequence[float | None]) -> str:
    """A difference of shares in signed percentage points, with its interval."""

    def points(v: float | None) -> str:
        return DASH if v is None or math.isnan(v) else f"{100 * v:+.1f}"

    return DASH if missing(value) else f"{points(value)} [{points(ci[0])}, {points(ci[1])}]"


def number(value: float | None, digits: int = 2) -> str:
    """A plain number (a dash for None or NaN)."""
    return DASH if value is None or math.isnan(value) else f"{value:.{digits}f}"


def banner(label: str = LABEL) -> str:
    """The line under a page's title saying where its numbers come from."""
    return (
        f"> **{label}.** Every number on this page was measured on the simulated agent world "
        "(`hera_router/simulator`), not on real models or real tasks.\n"
    )


def write_page(out: Path, name: str, title: str, body: str, label: str = LABEL) -> None:
    """One markdown page: the title with its label, the banner, the body."""
    (out / name).write_text(f"# {title} ({label})\n\n{banner(label)}\n{body.rstrip()}\n", encoding="utf-8")


def clean(value: Any) -> Any:
    """``value`` as plain JSON: floats rounded to 6 digits, NaN and ±inf as None, tuples as lists,
    paths and UUIDs as strings, mapping keys as strings."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, tuple | list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, Path | uuid.UUID):
        return str(value)
    return value


def write_results(path: Path, data: Any, indent: int = 1) -> None:
    """The results file: ``data`` cleaned (see :func:`clean`) as JSON."""
    path.write_text(json.dumps(clean(data), indent=indent) + "\n", encoding="utf-8")


def command_line() -> str:
    """The command this process was started with, as a user would type it."""
    import shlex
    import sys

    return " ".join(shlex.quote(arg) for arg in ["hera-router", *sys.argv[1:]])
