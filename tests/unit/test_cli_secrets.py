"""The CLI never prints a password, and a database it cannot reach is one sentence."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hera_router.cli import app, mask_url

URL = "postgresql+psycopg://bob:s3cret@127.0.0.1:1/hera"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "postgresql+psycopg://bob:***@127.0.0.1:1/hera"),
        ("amqp://guest:p%40ss:w0rd@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:////tmp/hera.sqlite3", "sqlite:////tmp/hera.sqlite3"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_config_masks_passwords_inside_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_DATABASE_URL", URL)
    monkeypatch.setenv("HERA_BROKER_URL", "amqp://guest:hunter2@rabbit//")

    result = CliRunner().invoke(app, ["config"])

    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "hunter2" not in result.output
    shown = json.loads(result.output)
    assert shown["database_url"] == "postgresql+psycopg://bob:***@127.0.0.1:1/hera"
    assert shown["broker_url"] == "amqp://guest:***@rabbit//"


def test_status_with_an_unreachable_database_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERA_DATABASE_URL", URL)

    result = CliRunner().invoke(app, ["status"])

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output
    assert result.output.startswith("the database at postgresql+psycopg://bob:***@127.0.0.1:1/hera is unreachable")
