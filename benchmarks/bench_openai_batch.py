"""OpenAI Batch API intake: a 50,000-line batch file (OpenAI's maximum) uploaded with the official
``openai`` client, validated and enqueued by ``POST /v1/batches``, on Postgres.

Measures (wall time, over HTTP against uvicorn): the upload (``files.create``), the batch creation
(parse and validate every line, then write the native batch, one request and one outbox row per
line in one transaction), and the rate requests are enqueued at (lines / creation time). Nothing
consumes the queue: the broker is ``memory://``, so the figure is the producer's, not the
workers'. Targets: upload and validation in at most 10 s, at least 5,000 requests/s.

    .venv/bin/python benchmarks/bench_openai_batch.py --lines 50000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openai import OpenAI

from hera_router.api.app import create_app
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from hera_router.devserver.server import ServerThread
from tests.conftest import fresh_postgres_database


def batch_file(lines: int) -> bytes:
    rows = []
    for index in range(lines):
        body = {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a careful assistant."},
                {"role": "user", "content": f"Question {index}: what is {index} + {index * 7 % 13}?"},
            ],
            "max_tokens": 256,
        }
        rows.append(
            json.dumps({"custom_id": f"req-{index}", "method": "POST", "url": "/v1/chat/completions", "body": body})
        )
    return ("\n".join(rows) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    args = parser.parse_args()
    data = batch_file(args.lines)
    os.environ.setdefault("HERA_LOG_LEVEL", "WARNING")
    with fresh_postgres_database("hera_bench_openai") as url:
        upgrade(url)
        settings = load_settings(
            database_url=url, broker_url="memory://", routing={"policy": "all-llm"}, api={"max_input_chars": 32_000}
        )
        app = create_app(settings)
        state = app.state.hera
        # The background publisher would compete for the 2 cores while we time the intake; the
        # rows stay in the outbox (the relay's job), which is what is measured.
        state.publisher.close()
        app.state.hera_openai.publish = lambda ids: None
        try:
            with ServerThread(app) as server:
                name = f"bench-{uuid.uuid4().hex[:6]}"
                create_tenant(state.sessions, name)
                _, secret = create_api_key(state.sessions, name)
                client = OpenAI(base_url=f"{server.url}/v1", api_key=secret, timeout=600, max_retries=0)
                start = time.perf_counter()
                uploaded = client.files.create(file=("bench.jsonl", data), purpose="batch")
                uploaded_s = time.perf_counter() - start
                start = time.perf_counter()
                batch = client.batches.create(
                    input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
                )
                created_s = time.perf_counter() - start
        finally:
            state.close()
    counts = batch.request_counts
    if counts is None or counts.total != args.lines:
        raise SystemExit(f"the batch does not hold {args.lines} requests: {batch}")
    total = uploaded_s + created_s
    print("| lines | file MB | upload s | validate + enqueue s | upload + validate s | requests/s enqueued |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.lines:,} | {len(data) / 1e6:.1f} | {uploaded_s:.2f} | {created_s:.2f} | {total:.2f} | "
        f"{args.lines / created_s:,.0f} |"
    )


if __name__ == "__main__":
    main()
