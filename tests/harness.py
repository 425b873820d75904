"""A whole deposit stack in the test process: real simulator, receiver, ledger, worker.

Only the Temporal server differs between tests (time-skipping or dev server); every hop
between the parts is real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities import DepositActivities
from deposits.client import DepositClient
from deposits.models import DepositResult
from deposits.settings import Settings
from ledger import Ledger
from simulator.testing import RunningSimulator
from tests.servers import serve_in_loop
from webhook.app import create_app as create_receiver
from webhook.server import callback_url
from worker.main import build_worker, xprizo_client
from workflows import DepositWorkflow

API_KEY = "test-api-key-" + uuid.uuid4().hex
ACCOUNT_ID = 4242
PHONE = "0712345678"


@dataclass
class DepositHarness:
    """Handles on every part of a running test stack."""

    temporal: Client
    settings: Settings
    simulator: RunningSimulator
    ledger: Ledger
    deposits: DepositClient
    activities: DepositActivities
    worker: Worker | None = None
    _worker_run: asyncio.Task | None = None

    async def start_worker(self) -> None:
        """Start a (new) worker on the stack's task queue."""
        assert self.worker is None, "a worker is already running"
        self.worker = build_worker(self.temporal, self.settings, self.activities)
        self._worker_run = asyncio.create_task(self.worker.run())

    async def stop_worker(self) -> None:
        """Shut the worker down as SIGTERM would: drain, then stop."""
        if self.worker is None:
            return
        await self.worker.shutdown()
        await self._worker_run
        self.worker = None

    async def start(
        self, description: str, *, amount: str = "100", reference: str | None = None
    ) -> WorkflowHandle[DepositWorkflow, DepositResult]:
        reference = reference or f"t-{uuid.uuid4().hex[:12]}"
        return await self.deposits.start(
            reference=reference, amount=amount, phone=PHONE, description=description
        )

    async def ledger_row(self, handle: WorkflowHandle, timeout: float = 30):
        """The deposit's ledger row once its outcome is recorded (needs_review too).

        Waits on the ledger in real time: no time skipping, and no queries, which can
        split a workflow task in two and add events that are the test's own.
        """
        reference = handle.id.removeprefix("deposit-")
        for _ in range(int(timeout / 0.1)):
            row = await asyncio.to_thread(self.ledger.outcome, reference)
            if row is not None:
                return row
            await asyncio.sleep(0.1)
        raise AssertionError(f"no outcome recorded for {reference} within {timeout}s")

    async def outcome_of(self, handle: WorkflowHandle, timeout: float = 30):
        """The deposit's state once its outcome is recorded."""
        await self.ledger_row(handle, timeout)
        return await handle.query(DepositWorkflow.state)

    def sim_requests(self, reference: str, path_part: str) -> list[dict[str, Any]]:
        """Requests the simulator got for a reference on paths containing a part."""
        response = httpx.get(self.simulator.url + "/_sim/requests")
        response.raise_for_status()
        return [
            r
            for r in response.json()
            if r.get("reference") == reference and path_part in r["path"]
        ]

    def script(self, reference: str, scenario: str, **knobs: Any) -> None:
        """Choose the simulator's scenario for a reference before it is created."""
        response = httpx.put(
            f"{self.simulator.url}/_sim/scenarios/{reference}",
            json={"scenario": scenario, **knobs},
        )
        response.raise_for_status()


def harness_settings(tmp_path: Path, simulator_url: str, **overrides: Any) -> Settings:
    """Settings for a test stack: short waits unless a test overrides them."""
    values: dict[str, Any] = {
        "task_queue": f"deposits-{uuid.uuid4().hex[:8]}",
        "xprizo_base_url": simulator_url,
        "xprizo_api_key": SecretStr(API_KEY),
        "xprizo_account_id": ACCOUNT_ID,
        "ledger_url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "poll_schedule": [(60, 0.5)],
        "poll_interval_after_seconds": 1.0,
        "deadline_seconds": 30.0,
        "not_found_grace_seconds": 5.0,
        "webhook_secret": SecretStr("s" * 40),
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_harness(
    temporal: Client, tmp_path: Path, *, callback_delay: float = 0.3, **overrides: Any
) -> AsyncIterator[DepositHarness]:
    """Start simulator, receiver and worker; stop them when the block ends."""
    with RunningSimulator(
        api_key=API_KEY, account_id=ACCOUNT_ID, callback_delay=callback_delay
    ) as simulator:
        probe = harness_settings(tmp_path, simulator.api_url, **overrides)
        ledger = Ledger(probe.ledger_url)
        ledger.create_schema()
        receiver = create_receiver(probe, temporal, ledger)
        async with serve_in_loop(receiver) as receiver_url:
            settings = probe.model_copy(update={"webhook_public_url": receiver_url})
            async with xprizo_client(settings) as xprizo:
                await xprizo.set_approval_webhook(callback_url(settings))
                harness = DepositHarness(
                    temporal=temporal,
                    settings=settings,
                    simulator=simulator,
                    ledger=ledger,
                    deposits=DepositClient(temporal, settings),
                    activities=DepositActivities(xprizo, ledger),
                )
                await harness.start_worker()
                try:
                    yield harness
                finally:
                    await harness.stop_worker()
        ledger.close()
