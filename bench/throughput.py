"""Deposits per second end to end, next to a bare-Temporal no-op baseline, in one run.

Run: ``.venv/bin/python -m bench.throughput [--deposits 200] [--concurrency 50]
[--rounds 2]``. One dev server (SQLite file), the simulator, the webhook receiver and
the product's worker run as processes, and so does the baseline's worker
(bench/baseline.py). A product deposit is the whole path: start, create at the
simulator, the simulator's callback over HTTP to the receiver, its signal, the status
check, the ledger write, the workflow's close. A baseline deposit is start, no-op
activity, signal from the client, two no-op activities, close. Rounds alternate
baseline and product so both see the same noise; the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid

from temporalio.client import Client

from bench._stack import (
    PHONE,
    bench_stack,
    bounded,
    machine,
    new_reference,
    spawn_python,
)
from bench.baseline import NoopDeposit
from deposits.client import DepositClient
from deposits.models import DecidedBy, Outcome
from ledger import Ledger

# The first scheduled check comes long after the callback: every deposit here is
# decided by its callback, as most are in production.
PRODUCT_SETTINGS = {
    "DEPOSITS_POLL_SCHEDULE": "[[60, 15], [300, 30], [600, 60]]",
    "DEPOSITS_LOG_FORMAT": "text",
}


async def product_round(client: DepositClient, count: int, concurrency: int):
    """Run ``count`` deposits end to end; their references and the seconds taken."""
    references = [new_reference("tp") for _ in range(count)]

    async def one(reference: str):
        handle = await client.start(
            reference=reference, amount="100", phone=PHONE, description="Pass"
        )
        return await handle.result()

    began = time.perf_counter()
    results = await bounded(
        concurrency, [lambda r=reference: one(r) for reference in references]
    )
    elapsed = time.perf_counter() - began
    wrong = [r for r in results if r.outcome != Outcome.APPROVED]
    assert not wrong, f"{len(wrong)} deposits not approved, e.g. {wrong[0]}"
    by_callback = sum(r.decided_by == DecidedBy.CALLBACK for r in results)
    return references, elapsed, by_callback


async def baseline_round(temporal: Client, queue: str, count: int, concurrency: int):
    """Run ``count`` no-op deposits; the seconds taken."""

    async def one(number: int) -> None:
        handle = await temporal.start_workflow(
            NoopDeposit.run,
            f"noop-{number}",
            id=f"noop-{uuid.uuid4().hex}",
            task_queue=queue,
        )
        await handle.signal(NoopDeposit.callback)
        await handle.result()

    began = time.perf_counter()
    await bounded(concurrency, [lambda n=n: one(n) for n in range(count)])
    return time.perf_counter() - began


async def main(count: int, concurrency: int, rounds: int) -> None:
    logging.disable(logging.WARNING)
    stack = bench_stack("throughput", PRODUCT_SETTINGS)
    stack.start_all()
    queue = f"baseline-{uuid.uuid4().hex[:8]}"
    baseline_worker = spawn_python(
        "bench.baseline",
        "--address",
        f"127.0.0.1:{stack.ports.temporal}",
        "--task-queue",
        queue,
        log=stack.log_path("baseline"),
    )
    try:
        await stack.register_webhook()
        client = await stack.deposit_client()
        temporal = client.temporal
        ledger = Ledger(stack.settings().ledger_url)

        print(f"machine: {machine()}")
        print(f"deposits per round {count}, concurrency {concurrency}, rounds {rounds}")
        # Warm-up: connections, worker caches, SQLite pages.
        await baseline_round(temporal, queue, min(50, count), concurrency)
        await product_round(client, min(50, count), concurrency)

        baseline_rates, product_rates = [], []
        for number in range(1, rounds + 1):
            seconds = await baseline_round(temporal, queue, count, concurrency)
            baseline_rates.append(count / seconds)
            print(f"round {number} baseline: {count / seconds:7.1f} deposits/s")
            references, seconds, by_callback = await product_round(
                client, count, concurrency
            )
            recorded = await asyncio.to_thread(
                lambda refs=references: sum(ledger.outcome(r) is not None for r in refs)
            )
            assert recorded == count, f"only {recorded} of {count} in the ledger"
            product_rates.append(count / seconds)
            print(
                f"round {number} product:  {count / seconds:7.1f} deposits/s "
                f"({by_callback}/{count} decided by callback, {recorded} in ledger)"
            )
        baseline = statistics.median(baseline_rates)
        product = statistics.median(product_rates)
        print(
            f"median baseline {baseline:.1f}/s, product {product:.1f}/s, "
            f"ratio product/baseline {product / baseline:.2f} (target >= 1.0)"
        )
        ledger.close()
    finally:
        baseline_worker.terminate()
        baseline_worker.wait(timeout=30)
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(main(options.deposits, options.concurrency, options.rounds))
