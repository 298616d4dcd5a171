"""Worker supervision: exit codes, pool-dependent options, one-line beat errors, the kombu patch."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError as BrokerOperationalError

from hera_router.config import load_settings
from hera_router.workers import create_app, kombu_patches
from hera_router.workers.supervision import OneLineConnectionErrors, configure_for_pool, exit_code, worker_argv


def test_exit_code_is_the_worker_controllers() -> None:
    assert exit_code(None) == 1  # the worker never initialised
    assert exit_code(SimpleNamespace(exitcode=None)) == 0  # a warm shutdown
    assert exit_code(SimpleNamespace(exitcode=1)) == 1  # "Unrecoverable error"
    assert exit_code(SimpleNamespace(exitcode="weird")) == 1


def test_worker_argv_turns_gossip_and_mingle_off_and_keeps_events() -> None:
    argv = worker_argv("q1,q2", 4, "threads", "INFO", ["-n", "edge@%h"])
    assert argv[:2] == ["worker", "-Q"]
    assert "-E" in argv
    assert argv.count("--without-gossip") == 1
    assert argv.count("--without-mingle") == 1
    assert argv[-2:] == ["-n", "edge@%h"]
    assert worker_argv("q", 1, "prefork", "INFO", ["--without-gossip"]).count("--without-gossip") == 1


@pytest.mark.parametrize(("pool", "cancel"), [("threads", False), ("prefork", True), ("solo", True)])
def test_cancel_on_connection_loss_only_where_the_pool_can_kill_a_job(pool: str, cancel: bool) -> None:
    app = create_app(load_settings())
    configure_for_pool(app, pool)
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is cancel


def test_beat_connection_errors_become_one_line() -> None:
    record_filter = OneLineConnectionErrors("beat could not send: %s: %s")
    try:
        raise BrokerOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    except BrokerOperationalError as exc:
        error = exc
        record = logging.LogRecord(
            "celery.beat", logging.ERROR, __file__, 1, "Message Error: %s\n%s", (exc, "stack…"), (type(exc), exc, None)
        )
    assert record_filter.filter(record)
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert str(error).split(".")[0] in record.getMessage()
    other = logging.LogRecord("celery.beat", logging.ERROR, __file__, 1, "boom", (), (ValueError, ValueError(), None))
    assert record_filter.filter(other)
    assert other.exc_info is not None  # not a connection error: the traceback stays


def test_the_kombu_patch_is_installed_by_the_app_factory_and_refuses_other_versions(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import kombu
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    create_app(load_settings())
    assert kombu_patches.installed()
    assert kombu.__version__ in kombu_patches.PATCHED_FOR

    # A channel whose transport was detached (Transport.client = None) fails as a connection error.
    channel = object.__new__(kombu_redis.Channel)
    channel.connection = SimpleNamespace(client=None)
    with pytest.raises(RedisConnectionError):
        channel._connparams()

    monkeypatch.setattr(kombu_redis.Channel, "_hera_restart_patch", False)
    monkeypatch.setattr(kombu, "__version__", "9.9.9")
    with caplog.at_level(logging.WARNING, logger="hera_router.workers.kombu_patches"):
        assert kombu_patches.install() is False
    assert "NOT patching" in caplog.text


def test_a_couldnt_ack_record_keeps_its_text_and_loses_its_traceback() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    error = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    record = logging.LogRecord(
        "celery.worker.request",
        logging.CRITICAL,
        __file__,
        1,
        "Couldn't ack %r, reason:%r",
        ("tag", error),
        (type(error), error, None),
    )
    assert OneLineConnectionErrors().filter(record)
    assert record.exc_info is None
    assert record.getMessage().startswith("Couldn't ack 'tag', reason:")
