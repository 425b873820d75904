"""End to end: the stack's four processes (dev server, simulator, receiver, worker) as a
service would use them, over real HTTP and gRPC on 127.0.0.1."""

from __future__ import annotations

import uuid

import httpx
import pytest

from deposits.client import DepositClient
from deposits.models import DecidedBy, Outcome
from devstack import LocalStack, StackPorts
from ledger import Ledger
from webhook.server import callback_url
from worker.main import xprizo_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    stack = LocalStack(
        data_dir=data_dir,
        ports=StackPorts.random(),
        overrides={
            "DEPOSITS_POLL_SCHEDULE": "[[60, 1]]",
            "DEPOSITS_DEADLINE_SECONDS": "20",
        },
    )
    with stack:
        yield stack


async def test_deposits_reach_their_outcomes_through_every_real_part(stack):
    settings = stack.settings()
    async with xprizo_client(settings) as xprizo:
        await xprizo.set_approval_webhook(callback_url(settings))
    client = await DepositClient.connect(settings)
    run = uuid.uuid4().hex[:8]
    approve = await client.start(
        reference=f"e2e-{run}-a", amount="120", phone="0712345678", description="Pass"
    )
    silent = await client.start(
        reference=f"e2e-{run}-s", amount="80", phone="0712345679", description="Silent"
    )

    approved = await approve.result()
    polled = await silent.result()

    assert (approved.outcome, approved.decided_by) == (
        Outcome.APPROVED,
        DecidedBy.CALLBACK,
    )
    assert (polled.outcome, polled.decided_by) == (Outcome.APPROVED, DecidedBy.POLL)
    ledger = Ledger(settings.ledger_url)
    assert ledger.outcome(f"e2e-{run}-a").outcome == "approved"
    signalled = [c for c in ledger.callbacks(f"e2e-{run}-a") if c.result == "signalled"]
    assert len(signalled) == 1
    ledger.close()
    requests = httpx.get(
        f"http://127.0.0.1:{stack.ports.simulator}/_sim/requests"
    ).json()
    creates = [r for r in requests if "MPesaDeposit" in r["path"]]
    assert sorted(r["reference"] for r in creates) == [f"e2e-{run}-a", f"e2e-{run}-s"]


async def test_a_retried_start_returns_the_same_deposit_and_a_changed_one_conflicts(
    stack,
):
    from deposits.client import DepositConflictError

    client = await DepositClient.connect(stack.settings())
    reference = f"e2e-{uuid.uuid4().hex[:8]}-dup"
    first = await client.start(
        reference=reference, amount="100", phone="0712345678", description="Pass"
    )
    again = await client.start(
        reference=reference, amount="100", phone="0712345678", description="Pass"
    )
    assert again.id == first.id
    with pytest.raises(DepositConflictError):
        await client.start(
            reference=reference, amount="101", phone="0712345678", description="Pass"
        )
    await first.result()
    after = await client.start(
        reference=reference, amount="100", phone="0712345678", description="Pass"
    )
    assert (await after.result()).outcome == Outcome.APPROVED
