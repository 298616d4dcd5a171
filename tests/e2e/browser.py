"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver`` packages) driven with
selenium, and ``hera-router serve-api`` on the embedded default as the server it reads.

Used by the console's browser tests and by ``scripts/console_screenshots.py``. Without Chromium the
tests fail (not skip) with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.integration.ops.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
HERA = [sys.executable, "-m", "hera_router.cli"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "Chromium is not installed: run `sudo apt-get install chromium chromium-driver` "
    "(or `make browser` as root) so the console's browser tests can run"
)
ADMIN_TOKEN = "console-admin-token"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1360,1000",
    "--disable-extensions",
    "--no-first-run",
)


def chromium_problem() -> str | None:
    """None if Debian's Chromium and its driver are there, else the sentence saying how to get them."""
    found = all(Path(path).is_file() or shutil.which(Path(path).name) for path in (CHROMIUM, CHROMEDRIVER))
    return None if found else INSTALL_HINT


def chrome() -> Any:
    """A headless Chromium that records the page's console messages (``get_log('browser')``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else str(shutil.which("chromium"))
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).is_file() else str(shutil.which("chromedriver"))
    return webdriver.Chrome(service=Service(driver_path), options=options)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path

    def hera(self, *argv: str, timeout_s: float = 120) -> str:
        run = subprocess.run(
            [*HERA, *argv], env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        assert run.returncode == 0, f"hera-router {' '.join(argv)}: {run.stdout}{run.stderr}"
        return run.stdout

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@contextmanager
def serve_api(data_dir: Path, prepare: Callable[[Server], object] | None = None) -> Iterator[Server]:
    """``hera-router db upgrade`` (then ``prepare``) and ``serve-api`` on a free port (SQLite,
    ``memory://``, the in-process workers), with an admin token; stopped with SIGINT."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HERA_")}
    env |= {"PYTHONPATH": str(REPO), "HERA_DATA_DIR": str(data_dir), "HERA_API__ADMIN_TOKEN": ADMIN_TOKEN}
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve-api.log"
    port = free_port()
    server = Server(url=f"http://127.0.0.1:{port}", env=env, log=log)
    server.hera("db", "upgrade")
    if prepare is not None:
        prepare(server)
    process = subprocess.Popen(
        [*HERA, "serve-api", "--port", str(port)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: _answers(f"{server.url}/healthz"), 90, "serve-api did not answer", log)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.1)


def sign_in(driver: Any, url: str, token: str) -> None:
    """Open the console, sign in through its form, wait for the first page."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/console")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{url}/console")
    state = lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")  # noqa: E731
    wait_for(lambda: state() == "sign-in", 60, "the sign-in form did not show")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    wait_for(lambda: state() not in (None, "", "sign-in"), 60, "the console did not load after signing in")


def open_page(driver: Any, url: str, fragment: str) -> None:
    """Navigate the signed-in console to ``#fragment`` and wait until it has rendered."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/console#{fragment}")
    body = lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")  # noqa: E731
    wait_for(lambda: body() in (f"#{fragment}", "error"), 60, f"#{fragment} did not render (state {body()!r})")


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The browser console's error entries since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
