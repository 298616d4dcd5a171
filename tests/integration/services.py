"""Private Redis and Postgres servers on free ports, for tests that restart them.

The machine's shared servers (5432, 6379) must never be restarted by a test; these are started
from the same binaries into a temporary directory, with no persistence for Redis (a restart comes
back empty, the worst case) and fsync off for Postgres (its data survives a restart, as in
production). Every server is stopped by its context manager, whatever the test did.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, up: bool, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not {'open' if up else 'close'} port {port} within {timeout_s:.0f} s")
        time.sleep(0.1)


class RedisServer:
    """``redis-server --port N --save '' --appendonly no``: a restart is a restart *empty*."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.port, True, 20, "redis-server")

    def kill(self) -> None:
        """SIGKILL: connections drop at once, nothing is saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        _wait_port(self.port, False, 10, "redis-server")

    def restart(self, down_s: float = 1.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found is None:
        raise RuntimeError("no initdb: install PostgreSQL server binaries")
    return Path(found).resolve().parent


class PostgresServer:
    """A throw-away cluster (``initdb`` into a temp dir) served by ``postgres -p PORT``.

    As root, the server runs as the ``postgres`` user (Postgres refuses to run as root).
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.data = directory / "pgdata"
        self.bin = postgres_bin_dir()
        self.process: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        self.url = f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(
            [
                *self._as_user,
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> None:
        log = (self.directory / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                *self._as_user,
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.directory),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.port, True, 60, "postgres")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("postgres did not accept connections within 60 s")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """``fast``: SIGINT, sessions are cut at once (what a restart does); ``immediate``: SIGQUIT."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        signal_name = {"fast": "INT", "immediate": "QUIT", "smart": "TERM"}[mode]
        # The postmaster itself (under runuser, self.process is runuser).
        pid = self.postmaster_pid() or self.process.pid
        subprocess.run(["kill", f"-{signal_name}", str(pid)], check=False)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        _wait_port(self.port, False, 20, "postgres")

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh cluster in its own directory under /tmp (the ``postgres`` user must reach it, and
    pytest's tmp dirs are private to root); removed afterwards with its data."""
    directory = Path(tempfile.mkdtemp(prefix="hera-pg-"))
    directory.chmod(0o755)
    server = PostgresServer(directory)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
