"""A real dev server on a loopback port, fronting the instant ``echo`` model, shared by the module.

Faults are reset before every test, so a test that scripts failures cannot leak them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hera_router.backends.echo import EchoBackend
from hera_router.backends.tgi import allow_self_hosted_servers_offline
from hera_router.config import BackendSettings, Settings, load_settings
from hera_router.devserver import FaultInjector, ServerThread, create_app


class DevServer:
    def __init__(self, server: ServerThread, faults: FaultInjector) -> None:
        self.server = server
        self.faults = faults

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def devserver() -> Iterator[DevServer]:
    # Tests run with HF_HUB_OFFLINE=1; InferenceClient must still reach our own server.
    allow_self_hosted_servers_offline()
    faults = FaultInjector()
    with ServerThread(create_app(EchoBackend(model="echo"), faults=faults)) as server:
        yield DevServer(server, faults)


@pytest.fixture(autouse=True)
def _clean_faults(devserver: DevServer) -> Iterator[None]:
    devserver.faults.reset()
    yield
    devserver.faults.reset()


def make_settings(
    tmp_path: Path, *, edge: dict[str, Any] | None = None, cloud: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings with tiny backoffs so that retries against the dev server take milliseconds."""
    fast = {"timeout_s": 5.0, "max_retries": 2, "backoff_base_s": 0.001, "backoff_max_s": 0.01}
    return load_settings(
        data_dir=tmp_path,
        edge=BackendSettings(**(fast | {"backend": "echo", "model": "echo"} | (edge or {}))),
        cloud=BackendSettings(**(fast | {"backend": "echo", "model": "echo"} | (cloud or {}))),
        **overrides,
    )
