"""The worker process: runs deposit workflows and activities until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.worker import Worker

from activities import DepositActivities
from deposits.settings import Settings
from ledger import Ledger
from worker.telemetry import MeteredTransport, flush_traces, worker_runtime
from worker.temporal import connect
from workflows import DepositWorkflow, ReconcileWorkflow
from xprizo import XprizoClient

log = logging.getLogger(__name__)


def xprizo_client(settings: Settings, meter: MetricMeter | None = None) -> XprizoClient:
    """The Xprizo client the settings describe; with a meter, every call is counted."""
    return XprizoClient(
        settings.xprizo_base_url,
        settings.xprizo_api_key,
        settings.xprizo_account_id,
        status_path=settings.xprizo_status_path,
        timeout=settings.xprizo_timeout_seconds,
        transport=(
            None if meter is None else MeteredTransport(meter, settings.xprizo_base_url)
        ),
    )


def build_worker(
    client: Client, settings: Settings, activities: DepositActivities
) -> Worker:
    """A worker for the deposit workflow and its activities on the settings' queue."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[DepositWorkflow, ReconcileWorkflow],
        activities=activities.all(),
        graceful_shutdown_timeout=timedelta(
            seconds=settings.worker_shutdown_grace_seconds
        ),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then let running activities finish within the grace."""
    runtime = worker_runtime(settings)
    client = await connect(settings, runtime)
    ledger = Ledger(settings.ledger_url)
    await asyncio.to_thread(ledger.migrate)
    async with xprizo_client(settings, runtime.metric_meter) as xprizo:
        worker = build_worker(client, settings, DepositActivities(xprizo, ledger))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
            log.info(
                "worker draining (grace %ss)", settings.worker_shutdown_grace_seconds
            )
        with contextlib.suppress(Exception):
            ledger.close()
    flush_traces()
    log.info("worker stopped")
