"""Client-side overhead per model call, through each backend, against the dev server's instant model.

The dev server runs in a separate process (``hera-router serve-models --backend echo``) so that its
work does not share this process's GIL with the callers. Each target makes the same kind of call;
the baseline is a bare ``httpx`` POST to the same route, so what a backend adds over "one HTTP
request" shows as a ratio measured in the same run. Concurrency is N threads sharing one client,
as a cloud worker's thread pool does.

    .venv/bin/python benchmarks/bench_backends.py --calls 300 --concurrency 1 4 16
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hera_router.backends.base import GenerationParams, Message
from hera_router.backends.echo import EchoBackend
from hera_router.backends.registry import create_backend
from hera_router.config import BackendSettings, load_settings

MESSAGES = [Message("system", "answer briefly"), Message("user", "what is the capital of France")]
PARAMS = GenerationParams(max_new_tokens=32)
CHAT_BODY = {"model": "echo", "messages": [{"role": "user", "content": "what is the capital of France"}]}
TGI_BODY = {"inputs": "what is the capital of France", "parameters": {"max_new_tokens": 32, "details": True}}


@dataclass
class Row:
    target: str
    baseline: str | None
    concurrency: int
    calls: int
    wall_s: float
    latencies_ms: list[float]

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"HERA_DATA_DIR": data_dir, "HERA_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "hera_router.cli", "serve-models", "--backend", "echo", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the dev server did not start")


def measure(name: str, baseline: str | None, call: Callable[[], object], concurrency: int, calls: int) -> Row:
    for _ in range(20):  # warm-up: connection pools, lazy imports
        call()

    def timed(_: int) -> float:
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(timed, range(calls)))
    return Row(name, baseline, concurrency, calls, time.perf_counter() - started, latencies)


def targets(url: str, data_dir: Path) -> dict[str, tuple[str | None, Callable[[], object]]]:
    raw = httpx.Client(timeout=30)

    def backend(name: str, suffix: str, use_chat: bool) -> Callable[[], object]:
        settings = load_settings(
            data_dir=data_dir,
            edge=BackendSettings(backend=name, url=url + suffix, model="echo", use_chat=use_chat, timeout_s=30),
        )
        client = create_backend(settings, "edge")
        return lambda: client.generate(MESSAGES, PARAMS)

    echo = EchoBackend()
    chat_baseline = "httpx POST /v1/chat/completions (baseline)"
    return {
        chat_baseline: (None, lambda: raw.post(f"{url}/v1/chat/completions", json=CHAT_BODY).json()),
        "httpx POST / (TGI, baseline)": (None, lambda: raw.post(f"{url}/", json=TGI_BODY).json()),
        "backend openai, chat": (chat_baseline, backend("openai", "/v1", True)),
        "backend openai, completions": (chat_baseline, backend("openai", "/v1", False)),
        "backend tgi, chat_completion": (chat_baseline, backend("tgi", "", True)),
        "backend tgi, text_generation": ("httpx POST / (TGI, baseline)", backend("tgi", "", False)),
        "echo in process (no HTTP)": (None, lambda: echo.generate(MESSAGES, PARAMS)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per target and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        server = start_server(port, scratch)
        try:
            url = f"http://127.0.0.1:{port}"
            rows = [
                measure(name, baseline, call, concurrency, args.calls)
                for concurrency in args.concurrency
                for name, (baseline, call) in targets(url, Path(scratch)).items()
            ]
        finally:
            server.terminate()
            server.wait(timeout=10)

    by_key = {(row.target, row.concurrency): row for row in rows}
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.calls} calls per row\n")
    print("| target | threads | median ms/call | p95 ms/call | calls/s | calls/s vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        base = by_key.get((row.baseline, row.concurrency)) if row.baseline else None
        ratio = f"{row.calls_per_s / base.calls_per_s:.2f}x" if base else "-"
        print(
            f"| {row.target} | {row.concurrency} | {row.median_ms:.2f} | {row.p95_ms:.2f} "
            f"| {row.calls_per_s:,.0f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
