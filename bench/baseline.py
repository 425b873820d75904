"""The bare-Temporal baseline: a deposit's shape with every step a no-op.

One activity (the create), a signal (the callback), two activities (the status check
and the ledger write), each an ordinary activity with the SDK's defaults: what a first
Temporal version of the deposit would look like. Run its worker as a process:
``python -m bench.baseline --address 127.0.0.1:7233 --task-queue q``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn
async def noop(step: str) -> str:
    """Does nothing; stands for one Xprizo call or ledger write."""
    return step


@workflow.defn
class NoopDeposit:
    """Create, wait for the callback signal, check the status, record: all no-ops."""

    def __init__(self) -> None:
        self._called_back = False

    @workflow.run
    async def run(self, reference: str) -> str:
        timeout = timedelta(seconds=30)
        await workflow.execute_activity(noop, "create", start_to_close_timeout=timeout)
        await workflow.wait_condition(lambda: self._called_back)
        await workflow.execute_activity(noop, "status", start_to_close_timeout=timeout)
        await workflow.execute_activity(noop, "record", start_to_close_timeout=timeout)
        return reference

    @workflow.signal
    def callback(self) -> None:
        """The callback arrived."""
        self._called_back = True


async def serve(address: str, task_queue: str) -> None:
    """Run the baseline worker until SIGTERM."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Worker(
        client, task_queue=task_queue, workflows=[NoopDeposit], activities=[noop]
    ):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    options = parser.parse_args()
    asyncio.run(serve(options.address, options.task_queue))
