"""Graceful shutdown on the stack's processes: SIGTERM drains the worker and the HTTP
servers, and a deposit in flight completes once its worker is back (K1, K8; design
invariant 7: no deposit lost or doubled when a worker stops)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx
import pytest

from deposits.client import DepositClient
from deposits.models import DecidedBy, DepositStatus, Outcome
from devstack import LocalStack, StackPorts
from ledger import Ledger
from webhook.server import callback_url
from worker.main import xprizo_client
from workflows import DepositWorkflow

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 2.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = LocalStack(
        data_dir=tmp_path_factory.mktemp("shutdown"),
        ports=StackPorts.random(),
        overrides={
            "DEPOSITS_POLL_SCHEDULE": "[[60, 30]]",
            "DEPOSITS_DEADLINE_SECONDS": "120",
            "DEPOSITS_WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        },
    )
    with stack:
        yield stack


async def _until(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout}s")


def _sigterm(stack: LocalStack, name: str) -> tuple[int | None, float]:
    """SIGTERM one process; its exit code and the seconds it took to stop."""
    process = stack.processes[name]
    started = time.monotonic()
    stack.stop_process(name, timeout=GRACE_SECONDS + 20)
    return process.returncode, time.monotonic() - started


async def test_a_deposit_in_flight_completes_after_its_worker_is_restarted(stack):
    settings = stack.settings()
    async with xprizo_client(settings) as xprizo:
        await xprizo.set_approval_webhook(callback_url(settings))
    reference = f"drain-{uuid.uuid4().hex[:10]}"
    # Approved 6 s after the create, so the callback lands while the worker is down.
    httpx.put(
        f"http://127.0.0.1:{stack.ports.simulator}/_sim/scenarios/{reference}",
        json={"scenario": "approve", "delay": 6},
    ).raise_for_status()
    client = await DepositClient.connect(settings)
    handle = await client.start(
        reference=reference, amount="125", phone="0712345678", description="drain"
    )

    async def pending():
        state = await handle.query(DepositWorkflow.state)
        return state.status == DepositStatus.PENDING

    await _until(pending, "the deposit was not pending")
    code, seconds = _sigterm(stack, "worker")
    assert code == 0
    assert seconds < GRACE_SECONDS + 15
    assert "worker stopped" in stack.log_path("worker").read_text()

    ledger = Ledger(settings.ledger_url)

    async def callback_kept():
        return [c for c in ledger.callbacks(reference) if c.result == "signalled"]

    # The receiver signals the workflow while no worker runs: the signal is durable.
    await _until(callback_kept, "no callback was signalled")
    stack.start_worker()
    result = await asyncio.wait_for(handle.result(), timeout=60)

    assert (result.outcome, result.decided_by) == (Outcome.APPROVED, DecidedBy.CALLBACK)
    assert [
        row.reference for row in ledger.deposits() if row.reference == reference
    ] == [reference]
    requests = httpx.get(
        f"http://127.0.0.1:{stack.ports.simulator}/_sim/requests"
    ).json()
    creates = [
        r
        for r in requests
        if "MPesaDeposit" in r["path"] and r["reference"] == reference
    ]
    assert len(creates) == 1
    ledger.close()


@pytest.mark.parametrize("name", ["webhook", "api"])
def test_sigterm_stops_an_http_server_cleanly_and_promptly(stack, name):
    if name not in stack.processes:
        pytest.skip(f"this stack runs no {name} process")
    code, seconds = _sigterm(stack, name)
    # uvicorn finishes its requests in flight, then re-raises the captured SIGTERM.
    assert code in (0, -signal.SIGTERM)
    assert seconds < 15
    assert "Traceback" not in stack.log_path(name).read_text()
