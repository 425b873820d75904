"""Callback-to-outcome latency at half the measured peak, p50 and p99.

Run: ``.venv/bin/python -m bench.latency [--seconds 30] [--peak-deposits 150]``. The
same process stack as bench/throughput.py. First a closed-loop burst measures the peak
deposits per second; then deposits arrive at a steady half of it for ``--seconds``. The
latency of one deposit runs from the moment the simulator begins POSTing its decisive
callback (the simulator's own callback log) to the moment the worker's ledger write
stamped the outcome (``recorded_at``): the receiver, the signal, the workflow task, the
status check and the ledger write, all on one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import datetime

from bench._stack import PHONE, bench_stack, machine, new_reference, percentile
from bench.throughput import PRODUCT_SETTINGS, product_round
from deposits.client import DepositClient
from deposits.models import DecidedBy, Outcome
from ledger import Ledger


async def steady_load(client: DepositClient, rate: float, seconds: float) -> list[str]:
    """Start deposits at ``rate`` per second for ``seconds``; wait for every outcome."""
    references: list[str] = []
    tasks: list[asyncio.Task] = []
    began = time.perf_counter()
    number = 0
    while (due := began + number / rate) < began + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        reference = new_reference("lat")
        references.append(reference)

        async def one(reference: str = reference):
            handle = await client.start(
                reference=reference, amount="100", phone=PHONE, description="Pass"
            )
            return await handle.result()

        tasks.append(asyncio.create_task(one()))
        number += 1
    results = await asyncio.gather(*tasks)
    wrong = [r for r in results if r.outcome != Outcome.APPROVED]
    assert not wrong, f"{len(wrong)} deposits not approved"
    late = sum(r.decided_by != DecidedBy.CALLBACK for r in results)
    assert not late, f"{late} deposits were not decided by their callback"
    return references


def callback_to_outcome(stack, ledger: Ledger, references: list[str]) -> list[float]:
    """Seconds from each deposit's decisive callback POST to its ledger row."""
    posted: dict[str, datetime] = {}
    for record in stack.sim_get("/_sim/callbacks"):
        if record["statusType"] == 2 and record["copy"] == 0:
            posted.setdefault(
                record["reference"], datetime.fromisoformat(record["time"])
            )
    samples = []
    for reference in references:
        row = ledger.outcome(reference)
        assert row is not None, f"{reference} has no outcome"
        samples.append((row.recorded_at - posted[reference]).total_seconds())
    return samples


async def main(seconds: float, peak_deposits: int, concurrency: int) -> None:
    logging.disable(logging.WARNING)
    stack = bench_stack("latency", PRODUCT_SETTINGS)
    stack.start_all()
    try:
        await stack.register_webhook()
        client = await stack.deposit_client()
        ledger = Ledger(stack.settings().ledger_url)
        print(f"machine: {machine()}")
        await product_round(client, min(50, peak_deposits), concurrency)  # warm-up
        _, elapsed, _ = await product_round(client, peak_deposits, concurrency)
        peak = peak_deposits / elapsed
        rate = peak / 2
        print(f"peak (closed loop, concurrency {concurrency}): {peak:.1f} deposits/s")
        print(f"steady load: {rate:.1f} deposits/s for {seconds:.0f} s")
        references = await steady_load(client, rate, seconds)
        samples = await asyncio.to_thread(
            callback_to_outcome, stack, ledger, references
        )
        p50, p99 = percentile(samples, 50) * 1000, percentile(samples, 99) * 1000
        print(
            f"callback POST -> outcome recorded: p50 {p50:.0f} ms (target <= 100), "
            f"p99 {p99:.0f} ms (target <= 500), max {max(samples) * 1000:.0f} ms, "
            f"n={len(samples)}"
        )
        ledger.close()
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--peak-deposits", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=50)
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.peak_deposits, options.concurrency))
