"""Take the web console's screenshots for docs/console.md with the headless Chromium the browser
tests use: ``hera-router serve-api`` on the embedded default in a scratch data dir, two tenants, a
few requests routed by ``hera`` (cold start) and ``all-llm``, one batch; then one PNG per page in
docs/img/. Every number on them is SIMULATED (the default simulated edge and cloud models).

    PYTHONPATH=. .venv/bin/python scripts/console_screenshots.py [--bootstrap] [--out docs/img]

``--bootstrap`` runs ``hera-router bootstrap --yes`` first, so the overview lists estimator versions.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hera_router.simulator.generate import generate  # noqa: E402
from tests.e2e.browser import (  # noqa: E402 - the repository's own helpers, after the path is set
    ADMIN_TOKEN,
    Server,
    chrome,
    chromium_problem,
    open_page,
    serve_api,
    sign_in,
    wait_for,
)

TERMINAL = {"succeeded", "failed", "cancelled"}


def full_page(driver: Any, width: int = 1360, max_height: int = 2400) -> bytes:
    """The whole page (up to ``max_height`` CSS pixels) as PNG, through the DevTools protocol."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": width, "height": min(height, max_height), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return base64.b64decode(shot["data"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--bootstrap", action="store_true", help="bootstrap the estimators first")
    args = parser.parse_args()
    problem = chromium_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)

    def bootstrap(server: Server) -> None:
        if args.bootstrap:
            print("bootstrapping the estimators (minutes)")
            server.hera("bootstrap", "--yes", timeout_s=1800)

    with tempfile.TemporaryDirectory() as scratch, serve_api(Path(scratch) / "data", bootstrap) as server:
        keys = {}
        for tenant in ("acme", "globex"):
            server.hera("tenants", "create", tenant)
            keys[tenant] = server.hera("keys", "create", tenant).split()[0]
        tasks = generate("mixed", 14, 0)  # requests the default simulated world (seed 0) knows how to run
        ids = []
        with server.client(keys["acme"]) as client:
            for task in tasks[:6]:
                accepted = client.post("/v1/agent-requests", json={"input": task.request, "policy": "hera"})
                ids.append(accepted.json()["id"])
            lines = [{"input": t.request, "custom_id": t.id, "policy": "hera"} for t in tasks[6:12]]
            batch = client.post("/v1/agent-batches", json=lines).json()["id"]
        with server.client(keys["globex"]) as client:
            for task in tasks[12:]:
                client.post("/v1/agent-requests", json={"input": task.request, "policy": "all-llm"})

        def finished() -> bool:
            with server.client(ADMIN_TOKEN) as admin:
                rows = admin.get("/v1/console/requests", params={"limit": 100}).json()
            return all(row["status"] in TERMINAL for row in rows)

        wait_for(finished, 180, "the requests did not finish in 180 s")
        driver = chrome()
        try:
            sign_in(driver, server.url, ADMIN_TOKEN)
            pages = {
                "console-requests.png": "/requests",
                "console-request.png": f"/requests/{ids[0]}",
                "console-batch.png": f"/batches/{batch}",
                "console-overview.png": "/overview",
            }
            for name, fragment in pages.items():
                open_page(driver, server.url, fragment)
                (args.out / name).write_bytes(full_page(driver))
                print(f"wrote {args.out / name}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
