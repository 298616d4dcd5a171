"""The README's OpenAI snippet, verbatim, against ``hera-router serve-api`` on the defaults.

Set-up as the README says (``db upgrade``, a tenant and a key), then ``serve-api`` as a real process
on a free port with nothing else started: SQLite under a scratch data dir, the embedded
``memory://`` broker, the in-process workers and scheduler of ``serve-api``. No ``HERA_*`` variable
is set but the data dir. The snippet is read from README.md and run by the official ``openai``
client in a process of its own; only the URL and the key are filled in. Its batch lines and its
chat call name ``all-llm``, a policy that needs no trained estimators.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hera_router.simulator.generate import generate
from tests.integration.ops.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
HERA = [sys.executable, "-m", "hera_router.cli"]
README_URL = "http://127.0.0.1:8000/v1"
README_KEY = "<key from hera-router keys create>"
BATCH_LINES = 4


def readme_snippet() -> str:
    """The python block of the README's "OpenAI-compatible" section."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### OpenAI-compatible") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "no python block in the README's OpenAI-compatible section"
    return match.group(1)


@dataclass
class Server:
    url: str
    key: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path


def _hera(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([*HERA, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, f"hera-router {' '.join(argv)}: {run.stdout}{run.stderr}"
    return run


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HERA_")}
    env |= {"PYTHONPATH": str(REPO), "HERA_DATA_DIR": str(tmp_path / "data")}
    _hera(["db", "upgrade"], env, tmp_path)
    _hera(["tenants", "create", "readme"], env, tmp_path)
    key = _hera(["keys", "create", "readme"], env, tmp_path).stdout.split()[0]
    assert key.startswith("hk_")
    port = free_port()
    log = tmp_path / "serve-api.log"
    process = subprocess.Popen(
        [*HERA, "serve-api", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, 90, "serve-api did not answer", log
        )
        yield Server(url=url, key=key, env=env, process=process, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_readme_openai_snippet_runs_on_the_defaults(server: Server, tmp_path: Path) -> None:
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    tasks = generate("mixed", BATCH_LINES, 0)  # the default simulated world is seed 0
    lines = [
        {
            "custom_id": task.id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "hera-router/all-llm", "messages": [{"role": "user", "content": task.request}]},
        }
        for task in tasks
    ]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    snippet = readme_snippet()
    assert README_URL in snippet
    assert README_KEY in snippet
    script = snippet.replace(README_URL, f"{server.url}/v1").replace(README_KEY, server.key)
    # What the snippet ended with, for the assertions below (appended; the snippet is unchanged).
    script += (
        "\nprint('RESULT ' + json.dumps({'status': batch.status, 'outputs': outputs, "
        "'reply': reply.choices[0].message.content, 'steps': reply.model_extra['hera']['steps'], "
        "'models': [model.id for model in client.models.list()]}))\n"
    )
    (tmp_path / "snippet.py").write_text(script)

    run = subprocess.run(
        [sys.executable, "snippet.py"],
        cwd=tmp_path,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, f"{run.stdout}{run.stderr}\n{server.log.read_text(errors='replace')[-3000:]}"
    result = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["status"] == "completed"
    assert sorted(output["custom_id"] for output in result["outputs"]) == sorted(task.id for task in tasks)
    assert all(output["response"]["status_code"] == 200 for output in result["outputs"])
    assert all(output["response"]["body"]["choices"][0]["message"]["content"] for output in result["outputs"])
    assert result["steps"]
    assert all(step["executor"] == "llm" for step in result["steps"])
    assert "hera-router" in result["models"]
    assert "hera-router/all-llm" in result["models"]
    # serve-api's own workers consume every queue a request passes through.
    assert health["status"] == "ok", health
    for queue in ("router", "edge", "cloud", "maintenance"):
        assert health["queues"][queue], health
    status = _hera(["status"], server.env, tmp_path).stdout
    assert re.search(rf"succeeded\s+{BATCH_LINES + 1}\b", status), status  # the batch lines and the chat call


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_api_stops_its_workers_and_exits_zero(server: Server, stop: signal.Signals) -> None:
    server.process.send_signal(stop)

    code = server.process.wait(timeout=60)

    log = server.log.read_text(errors="replace")
    assert code == 0, log
    assert "Traceback" not in log, log
