"""Many deposits pending at once on one worker: its memory, and its CPU while they wait.

Run: ``.venv/bin/python -m bench.scale [--deposits 2000] [--idle-seconds 30]``
(``--deposits 10000`` for the full figure; it takes several minutes to set up here).
The process stack of bench/throughput.py, every deposit in the simulator's pending
scenario, and the first scheduled status check an hour away, so each deposit is
created and then waits for a callback on a durable timer, as it does in production
for the first 15 s, and as a deposit whose Xprizo decision is late does between
checks. The worker's resident memory is sampled as the deposits pile up, then its CPU
(and the dev server's) over an idle window.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from bench._stack import (
    PHONE,
    bench_stack,
    machine,
    new_reference,
    process_cpu_seconds,
    process_rss_mb,
    until,
)

WAITING = {
    "DEPOSITS_POLL_SCHEDULE": "[[7200, 3600]]",
    "DEPOSITS_DEADLINE_SECONDS": "7200",
}


async def main(deposits: int, idle_seconds: float, concurrency: int) -> None:
    logging.disable(logging.WARNING)
    stack = bench_stack("scale", WAITING)
    stack.start_all()
    try:
        await stack.register_webhook()
        client = await stack.deposit_client()
        worker = stack.pid("worker")
        await asyncio.sleep(3)
        print(f"machine: {machine()}")
        print(f"worker RSS with no deposit: {process_rss_mb(worker):.0f} MiB")
        step = max(1, deposits // 5)
        began = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(number: int) -> None:
            async with gate:
                await client.start(
                    reference=new_reference(f"scale{number}"),
                    amount="100",
                    phone=PHONE,
                    description="waits",
                )

        for first in range(0, deposits, step):
            batch = range(first, min(deposits, first + step))
            await asyncio.gather(*(one(n) for n in batch))
            created = await asyncio.to_thread(
                lambda: len(stack.sim_get("/_sim/requests", endpoint="create"))
            )
            print(
                f"{batch.stop:6} started, {created:6} created at the simulator, "
                f"{time.perf_counter() - began:6.0f} s, worker RSS "
                f"{process_rss_mb(worker):5.0f} MiB"
            )

        async def all_created():
            found = await asyncio.to_thread(
                lambda: len(stack.sim_get("/_sim/requests", endpoint="create"))
            )
            return found >= deposits

        await until(all_created, "not every deposit was created", timeout=600, every=1)
        setup = time.perf_counter() - began
        print(f"{deposits} deposits created and waiting after {setup:.0f} s")
        await asyncio.sleep(5)  # let the last workflow tasks settle

        pids = {"worker": worker, "dev server": stack.pid("temporal")}
        cpu = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        await asyncio.sleep(idle_seconds)
        for name, pid in pids.items():
            share = 100 * (process_cpu_seconds(pid) - cpu[name]) / idle_seconds
            print(
                f"{name:10} while {deposits} wait: CPU {share:5.1f}% "
                f"of one core over {idle_seconds:.0f} s, RSS "
                f"{process_rss_mb(pid):5.0f} MiB"
            )
        print("targets: worker RSS <= 400 MiB, CPU near zero while they wait")
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=100)
    options = parser.parse_args()
    asyncio.run(main(options.deposits, options.idle_seconds, options.concurrency))
