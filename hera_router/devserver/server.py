"""Run the dev server: in the foreground (``hera-router serve-models``) or in a background thread.

The thread form is what tests and the benchmark use: a real uvicorn server on a real loopback
port, in the same process, so that the clients go through HTTP while the test still controls the
server (faults, request counts) directly.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from hera_router.backends.base import BackendRole
from hera_router.config import Settings
from hera_router.devserver.app import create_app
from hera_router.devserver.faults import FaultConfig

_STARTUP_TIMEOUT_S = 30.0


class ServerThread:
    """A uvicorn server on ``host:port`` (port 0: any free port) in a daemon thread.

    Use as a context manager; ``url`` is known once it has started.
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        )
        # uvicorn only captures signals on the main thread, so stopping is up to stop().
        self._thread = threading.Thread(target=self._server.run, name="hera-devserver", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the dev server failed to start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dev server did not start within {_STARTUP_TIMEOUT_S:.0f}s")
            time.sleep(0.01)
        # With port 0 the OS picked the port: read it back from the listening socket.
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_DEFAULT_MODELS = {"echo": "echo", "local": "smollm2-135m-instruct"}


def serve(
    settings: Settings,
    *,
    backend: str,
    role: BackendRole = "edge",
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    faults: FaultConfig | None = None,
) -> None:
    """Build ``backend`` from the registry and serve it until interrupted (``hera-router serve-models``).

    The role picks whose settings are the base (``HERA_EDGE__*`` or ``HERA_CLOUD__*``) and, for
    ``sim``, whether the simulated SLM or LLM answers. Raises :class:`BackendConfigError` for an
    unknown or unloadable backend before binding the port.
    """
    from hera_router.backends.registry import build_raw_backend, role_settings

    base = role_settings(settings, role)
    chosen = model or _DEFAULT_MODELS.get(backend, base.model)
    config = base.model_copy(update={"backend": backend, "model": chosen})
    app = create_app(build_raw_backend(settings, role, config), faults=faults)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
