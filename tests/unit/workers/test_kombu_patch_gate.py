"""The kombu Redis-restart patch applies only on the kombu versions it was checked against.

pyproject.toml accepts a range of kombu; on a version outside PATCHED_FOR (or one whose redis
Channel lost a method the patch wraps) install() must leave kombu untouched and warn, not raise.
"""

from __future__ import annotations

import logging

import pytest

from hera_router.workers import kombu_patches


class FakeChannel:
    """Stands in for kombu's redis Channel: the three methods the patch wraps or calls."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, object]:
        return {}

    def close(self) -> None:
        return None

    def _brpop_read(self) -> None:
        return None


@pytest.fixture
def fake_kombu(monkeypatch: pytest.MonkeyPatch) -> type[FakeChannel]:
    import kombu
    from kombu.transport import redis as kombu_redis

    channel = type("Channel", (FakeChannel,), {})
    monkeypatch.setattr(kombu_redis, "Channel", channel)
    monkeypatch.setattr(kombu, "__version__", next(iter(kombu_patches.PATCHED_FOR)))
    return channel


def test_a_checked_version_is_patched(fake_kombu: type[FakeChannel]) -> None:
    original_close = fake_kombu.close
    assert kombu_patches.install() is True
    assert kombu_patches.installed()
    assert fake_kombu.close is not original_close
    assert kombu_patches.install() is True  # once per process: a second call changes nothing
    assert fake_kombu.close.__name__ == "close"


@pytest.mark.parametrize("version", ["5.7.1", "5.8.0", "6.0.0"])
def test_another_version_is_left_alone_with_a_warning(
    version: str, fake_kombu: type[FakeChannel], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import kombu

    monkeypatch.setattr(kombu, "__version__", version)
    original = (fake_kombu.close, fake_kombu._connparams)
    with caplog.at_level(logging.WARNING, logger="hera_router.workers.kombu_patches"):
        assert kombu_patches.install() is False
    assert (fake_kombu.close, fake_kombu._connparams) == original
    assert not kombu_patches.installed()
    [record] = [r for r in caplog.records if r.name == "hera_router.workers.kombu_patches"]
    assert record.levelno == logging.WARNING
    assert f"kombu {version} is not a version" in record.getMessage()
    assert "NOT patching" in record.getMessage()


def test_a_checked_version_whose_internals_moved_is_left_alone(
    fake_kombu: type[FakeChannel], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(FakeChannel, "_brpop_read")
    with caplog.at_level(logging.WARNING, logger="hera_router.workers.kombu_patches"):
        assert kombu_patches.install() is False
    assert not kombu_patches.installed()
    assert "has no _brpop_read" in caplog.text


def test_the_installed_kombu_is_one_the_patch_was_checked_against() -> None:
    import kombu
    from kombu.transport import redis as kombu_redis

    # The shared environment's kombu: the range in pyproject.toml must not have moved it off.
    assert kombu.__version__ in kombu_patches.PATCHED_FOR
    assert kombu_patches.unpatchable(kombu.__version__, kombu_redis.Channel) is None
