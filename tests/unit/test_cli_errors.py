"""The CLI's last line of defence: a database or broker failure that escapes a command becomes one
sentence and exit status 2, while any other exception keeps its traceback (it is a bug)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import create_engine, text

from hera_router.cli.base import HeraTyper, explain


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:  # whatever the library raises is what the CLI must explain
        return exc
    raise AssertionError("expected the action to fail")


def test_an_unreachable_database_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+psycopg://hera:pw@127.0.0.1:{_closed_port()}/hera"
    monkeypatch.setenv("HERA_DATABASE_URL", url)
    engine = create_engine(url)

    error = _raised(engine.connect)

    sentence = explain(error)
    assert sentence is not None
    assert sentence.startswith(f"the database at {url.replace(':pw@', ':***@')} is unreachable: ")
    assert "\n" not in sentence


def test_a_missing_table_says_to_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    monkeypatch.setenv("HERA_DATABASE_URL", url)
    engine = create_engine(url)

    def select() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM requests"))

    sentence = explain(_raised(select))

    assert sentence is not None
    assert sentence.endswith("run `hera-router db upgrade` first")
    assert "no such table: requests" in sentence


def test_a_broker_that_is_down_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    monkeypatch.setenv("HERA_BROKER_URL", url)

    def connect() -> None:
        with Connection(url) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0)

    sentence = explain(_raised(connect))

    assert sentence is not None
    assert sentence.startswith(f"the broker at {url} is unreachable: ")


def test_the_app_prints_the_sentence_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+psycopg://hera@127.0.0.1:{_closed_port()}/hera"
    monkeypatch.setenv("HERA_DATABASE_URL", url)
    app = HeraTyper(pretty_exceptions_enable=False)

    @app.command()
    def touch() -> None:
        create_engine(url).connect()

    @app.command()
    def broken() -> None:
        raise KeyError("a bug")

    with pytest.raises(SystemExit) as exited:
        app(["touch"], prog_name="hera-router")
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"the database at {url} is unreachable: ")
    with pytest.raises(KeyError):
        app(["broken"], prog_name="hera-router")


def test_a_results_title_says_which_models_were_real() -> None:
    from hera_router.cli.base import world_label
    from hera_router.config import BackendSettings, load_settings

    assert world_label(load_settings()) == " (simulated world)"
    real_edge = load_settings(edge=BackendSettings(backend="local", model="smollm2-135m-instruct"))
    assert world_label(real_edge) == " (REAL EDGE MODEL / SIMULATED CLOUD)"
    both = load_settings(edge=BackendSettings(backend="tgi", url="http://x"), cloud=BackendSettings(backend="openai"))
    assert world_label(both) == ""
