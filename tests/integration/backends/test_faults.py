"""Failure policy end to end: faults injected by the dev server, seen through the real clients."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hera_router.backends.base import (
    BackendConfigError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    GenerationParams,
    Message,
)
from hera_router.backends.registry import create_backend
from hera_router.backends.resilience import BreakerState, ResilientBackend
from hera_router.devserver import FaultConfig, ScriptedFault
from tests.integration.backends.conftest import DevServer, make_settings

HELLO = [Message("user", "hello")]
# (backend, use_chat, url suffix): each HTTP client and each of its request modes
HTTP_BACKENDS = [("tgi", True, ""), ("tgi", False, ""), ("openai", True, "/v1"), ("openai", False, "/v1")]
IDS = [f"{b}-{'chat' if chat else 'raw'}" for b, chat, _ in HTTP_BACKENDS]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def backend_for(
    devserver: DevServer,
    tmp_path: Path,
    spec: tuple[str, bool, str],
    *,
    slept: list[float] | None = None,
    clock: FakeClock | None = None,
    **overrides: object,
) -> ResilientBackend:
    name, use_chat, suffix = spec
    settings = make_settings(
        tmp_path, edge={"backend": name, "url": devserver.url + suffix, "use_chat": use_chat, **overrides}
    )
    return create_backend(
        settings,
        "edge",
        sleep=(slept.append if slept is not None else lambda _: None),
        clock=clock or FakeClock(),
    )


@pytest.mark.parametrize("spec", HTTP_BACKENDS, ids=IDS)
def test_429_with_retry_after_is_retried_and_succeeds(
    devserver: DevServer, tmp_path: Path, spec: tuple[str, bool, str]
) -> None:
    devserver.faults.configure(FaultConfig(statuses=[ScriptedFault(status=429, retry_after="0.005")] * 2))
    slept: list[float] = []
    backend = backend_for(devserver, tmp_path, spec, slept=slept, max_retries=3)

    generation = backend.generate(HELLO, GenerationParams())

    assert generation.text == "echo: hello"
    assert generation.attempts == 3
    assert devserver.faults.generation_requests == 3
    assert len(slept) == 2
    assert all(wait >= 0.005 for wait in slept)  # Retry-After honoured as the minimum wait


@pytest.mark.parametrize("spec", HTTP_BACKENDS, ids=IDS)
def test_500s_exhaust_the_retries(devserver: DevServer, tmp_path: Path, spec: tuple[str, bool, str]) -> None:
    devserver.faults.configure(FaultConfig(error_rate=1.0, error_status=500))
    backend = backend_for(devserver, tmp_path, spec, max_retries=2)

    with pytest.raises(BackendUnavailable, match="gave up after 3 attempts") as caught:
        backend.generate(HELLO, GenerationParams())

    assert type(caught.value) is BackendUnavailable
    assert caught.value.status_code == 500
    assert devserver.faults.generation_requests == 3


@pytest.mark.parametrize("spec", HTTP_BACKENDS, ids=IDS)
def test_a_4xx_is_rejected_without_retrying(devserver: DevServer, tmp_path: Path, spec: tuple[str, bool, str]) -> None:
    devserver.faults.configure(FaultConfig(statuses=[ScriptedFault(status=400)]))
    backend = backend_for(devserver, tmp_path, spec, max_retries=3)

    with pytest.raises(BackendRejected) as caught:
        backend.generate(HELLO, GenerationParams())

    assert caught.value.status_code == 400
    assert devserver.faults.generation_requests == 1


@pytest.mark.parametrize("spec", HTTP_BACKENDS, ids=IDS)
def test_a_slow_server_is_a_timeout(devserver: DevServer, tmp_path: Path, spec: tuple[str, bool, str]) -> None:
    devserver.faults.configure(FaultConfig(latency_s=1.0))
    backend = backend_for(devserver, tmp_path, spec, timeout_s=0.2, max_retries=0)

    with pytest.raises(BackendTimeout, match="within the timeout"):
        backend.generate(HELLO, GenerationParams())


@pytest.mark.parametrize("spec", HTTP_BACKENDS, ids=IDS)
def test_breaker_opens_fails_fast_then_closes_after_the_reset_time(
    devserver: DevServer, tmp_path: Path, spec: tuple[str, bool, str]
) -> None:
    clock = FakeClock()
    backend = backend_for(
        devserver, tmp_path, spec, clock=clock, max_retries=0, breaker_failure_threshold=3, breaker_reset_s=60.0
    )
    devserver.faults.configure(FaultConfig(error_rate=1.0, error_status=503))
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            backend.generate(HELLO, GenerationParams())
    assert backend.breaker.state is BreakerState.OPEN

    with pytest.raises(CircuitOpen):
        backend.generate(HELLO, GenerationParams())
    assert devserver.faults.generation_requests == 3  # the open breaker sent nothing

    devserver.faults.reset()
    clock.now += 60.0
    assert backend.breaker.state is BreakerState.HALF_OPEN
    assert backend.generate(HELLO, GenerationParams()).text == "echo: hello"
    assert backend.breaker.state is BreakerState.CLOSED


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("name", "suffix"), [("tgi", ""), ("openai", "/v1")])
def test_an_unreachable_url_is_named(tmp_path: Path, name: str, suffix: str) -> None:
    url = f"http://127.0.0.1:{_unused_port()}{suffix}"
    settings = make_settings(tmp_path, edge={"backend": name, "url": url, "max_retries": 1})

    with pytest.raises(BackendConfigError, match=f"cannot reach .*{url}"):
        create_backend(settings, "edge", probe=True)

    backend = create_backend(settings, "edge", sleep=lambda _: None)
    with pytest.raises(BackendUnavailable, match=f"cannot reach {url}"):
        backend.generate(HELLO, GenerationParams())
