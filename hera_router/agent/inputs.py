"""Request files for ``hera-router run`` and ``hera-router submit``.

Two line shapes are accepted in one JSONL file:

- the API's request items: ``{"input": ..., "custom_id": ..., "gold_answer": ..., "metadata": {...}}``;
- the simulator's world records (``hera-router world generate``): ``{"id", "request", "gold",
  "metric", "world_seed", ...}``, converted to request items that keep the metric and the seed.

Lines are converted one by one and never dropped or reordered, so the submission's line-numbered
error messages still point at the user's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORLD_RECORD_KEYS = frozenset({"request", "gold"})


@dataclass(frozen=True, slots=True)
class RequestFile:
    jsonl: str
    """The file's lines, world records converted to request items."""
    world_seeds: frozenset[int]
    """Seeds named by world records (a simulated run must use the same seed)."""


def world_record_to_item(record: dict[str, Any]) -> dict[str, Any]:
    meta = {key: record[key] for key in ("family", "metric", "world_seed", "hops") if key in record}
    item: dict[str, Any] = {"input": record["request"], "gold_answer": str(record["gold"]), "metadata": meta}
    if "id" in record:
        item["custom_id"] = str(record["id"])
    return item


def read_request_file(path: Path) -> RequestFile:
    """Read ``path``; raises ``OSError`` if it cannot be read (the caller says which file)."""
    lines: list[str] = []
    seeds: set[int] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            decoded = json.loads(line)
        except ValueError:
            lines.append(line)  # left for the submission to report with its line number
            continue
        if isinstance(decoded, dict) and decoded.keys() >= WORLD_RECORD_KEYS and "input" not in decoded:
            if isinstance(decoded.get("world_seed"), int):
                seeds.add(decoded["world_seed"])
            lines.append(json.dumps(world_record_to_item(decoded), ensure_ascii=False))
        else:
            lines.append(line)
    return RequestFile(jsonl="\n".join(lines) + "\n", world_seeds=frozenset(seeds))
