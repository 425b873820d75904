"""The webhook receiver under load, duplicates included, next to raw ``client.signal``.

Run: ``.venv/bin/python -m bench.webhook_load [--deposits 300] [--copies 3]
[--concurrency 32] [--rounds 2]``. The dev server and the receiver run as processes
(no worker, so only the receiver's own work is measured: parse, signal, ledger row).
Each deposit gets ``--copies`` identical decisive callbacks, so all but the first are
duplicates. The raw baseline sends the same number of signals with the same payload
straight from a Temporal client in this process. Rounds alternate the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from datetime import UTC, datetime

import httpx

from bench._stack import PHONE, bench_stack, machine, new_reference, percentile
from deposits.client import DepositClient
from deposits.models import CallbackSignal
from workflows import DepositWorkflow

SECRET = "bench-" + "w" * 40


def callback_body(reference: str, transaction_id: int) -> bytes:
    return json.dumps(
        {
            "statusType": 2,
            "status": "Accepted",
            "transaction": {
                "id": transaction_id,
                "reference": reference,
                "amount": 100,
                "currencyCode": "KES",
            },
        }
    ).encode()


async def timed(jobs, concurrency: int) -> tuple[float, list[float]]:
    """Run the jobs ``concurrency`` at a time; total seconds and each job's seconds."""
    gate = asyncio.Semaphore(concurrency)
    samples: list[float] = []

    async def one(job) -> None:
        async with gate:
            began = time.perf_counter()
            await job()
            samples.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(job) for job in jobs))
    return time.perf_counter() - began, samples


async def receiver_round(http: httpx.AsyncClient, references, copies, concurrency):
    bodies = [
        callback_body(reference, 5000 + number)
        for _ in range(copies)
        for number, reference in enumerate(references)
    ]
    answers: list[int] = []

    async def post(body: bytes) -> None:
        answer = await http.post(f"/xprizo/callback/{SECRET}", content=body)
        answers.append(answer.status_code)

    seconds, samples = await timed([lambda b=b: post(b) for b in bodies], concurrency)
    refused = [code for code in answers if code != 200]
    assert not refused, f"{len(refused)} callbacks refused, e.g. {refused[0]}"
    return len(bodies), seconds, samples


async def signal_round(client: DepositClient, references, copies, concurrency):
    temporal = client.temporal

    async def signal(reference: str, number: int) -> None:
        handle = temporal.get_workflow_handle_for(
            DepositWorkflow.run, f"deposit-{reference}"
        )
        await handle.signal(
            DepositWorkflow.callback,
            CallbackSignal(
                status_type=2,
                status="Accepted",
                transaction_id=5000 + number,
                reference=reference,
                amount=100,
                currency="KES",
                received_at=datetime.now(UTC),
            ),
        )

    jobs = [
        lambda r=reference, n=number: signal(r, n)
        for _ in range(copies)
        for number, reference in enumerate(references)
    ]
    seconds, samples = await timed(jobs, concurrency)
    return len(jobs), seconds, samples


async def health_round(http: httpx.AsyncClient, count: int, concurrency: int):
    """The same HTTP client and server doing nothing: the floor of any receiver."""

    async def get() -> None:
        (await http.get("/healthz")).raise_for_status()

    seconds, samples = await timed([get] * count, concurrency)
    return count, seconds, samples


def line(name: str, count: int, seconds: float, samples: list[float]) -> str:
    return (
        f"{name:9} {count / seconds:7.1f}/s  p50 {percentile(samples, 50) * 1000:6.1f} "
        f"ms  p99 {percentile(samples, 99) * 1000:6.1f} ms  (n={count})"
    )


async def main(deposits: int, copies: int, concurrency: int, rounds: int) -> None:
    logging.disable(logging.WARNING)
    stack = bench_stack("webhook", {"DEPOSITS_WEBHOOK_SECRET": SECRET})
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    (stack.data_dir / "logs").mkdir(exist_ok=True)
    try:
        stack.start_temporal()
        stack.start_webhook()
        client = await stack.deposit_client()
        references = [new_reference("wh") for _ in range(deposits)]
        await asyncio.gather(
            *(client.start(reference=r, amount="100", phone=PHONE) for r in references)
        )
        print(f"machine: {machine()}")
        print(
            f"{deposits} deposits x {copies} identical callbacks "
            f"({copies - 1} of each {copies} duplicates), concurrency {concurrency}"
        )
        limits = httpx.Limits(max_connections=concurrency)
        base = f"http://127.0.0.1:{stack.ports.webhook}"
        async with httpx.AsyncClient(
            base_url=base, limits=limits, trust_env=False, timeout=30
        ) as http:
            await receiver_round(http, references[:20], 1, concurrency)  # warm-up
            await signal_round(client, references[:20], 1, concurrency)
            receiver_rates, signal_rates, receiver_p99 = [], [], []
            for number in range(1, rounds + 1):
                count, seconds, samples = await signal_round(
                    client, references, copies, concurrency
                )
                signal_rates.append(count / seconds)
                print(f"round {number} {line('signal', count, seconds, samples)}")
                count, seconds, samples = await receiver_round(
                    http, references, copies, concurrency
                )
                receiver_rates.append(count / seconds)
                receiver_p99.append(percentile(samples, 99))
                print(f"round {number} {line('receiver', count, seconds, samples)}")
                count, seconds, samples = await health_round(http, count, concurrency)
                print(f"round {number} {line('healthz', count, seconds, samples)}")
        receiver = statistics.median(receiver_rates)
        raw = statistics.median(signal_rates)
        print(
            f"median receiver {receiver:.1f}/s, raw signal {raw:.1f}/s, ratio "
            f"{receiver / raw:.2f} (target >= 0.8); receiver p99 "
            f"{statistics.median(receiver_p99) * 1000:.0f} ms"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=300)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(
        main(options.deposits, options.copies, options.concurrency, options.rounds)
    )
