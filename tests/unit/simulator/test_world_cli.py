"""``hera-router world generate`` and ``world calibrate``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hera_router.cli import app

runner = CliRunner()


def test_generate_writes_jsonl_with_ids_and_gold(tmp_path: Path) -> None:
    out = tmp_path / "sets" / "lookup.jsonl"
    result = runner.invoke(
        app, ["world", "generate", "--family", "lookup", "--n", "5", "--seed", "2", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert {row["family"] for row in rows} == {"lookup"}
    assert all(row["id"].startswith("sim-2-lookup-") and row["gold"] and row["metric"] == "entity" for row in rows)


def test_generate_rejects_an_unknown_family(tmp_path: Path) -> None:
    result = runner.invoke(app, ["world", "generate", "--family", "poems", "--out", str(tmp_path / "x.jsonl")])

    assert result.exit_code == 2
    assert "unknown task family 'poems'" in result.output


def test_calibrate_prints_and_writes_the_report(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    runner.invoke(app, ["world", "generate", "--n", "12", "--out", str(requests)])
    out = tmp_path / "report.md"
    result = runner.invoke(app, ["world", "calibrate", "--requests", str(requests), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "SIMULATED calibration" in result.output
    assert out.read_text().startswith("## SIMULATED calibration")


def test_calibrate_refuses_a_file_from_another_world(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    runner.invoke(app, ["world", "generate", "--n", "3", "--seed", "7", "--out", str(requests)])
    result = runner.invoke(app, ["world", "calibrate", "--requests", str(requests)])

    assert result.exit_code == 2
    assert "--seed 7" in result.output
