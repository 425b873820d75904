"""The deposit workflow's three ways to an outcome, on the time-skipping test server.

Every part but the server is real: the simulator, the webhook receiver, the ledger and
the activities talk over HTTP on 127.0.0.1.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio.client import WorkflowHandle

from deposits.models import DecidedBy, DepositStatus, Outcome
from tests.harness import running_harness
from workflows import DepositWorkflow


async def test_callback_wakes_the_deposit_and_one_status_check_approves_it(
    time_skipping_env, tmp_path
):
    # K1 absent: the callback arrives. Waiting on the ledger instead of result() keeps
    # the server from skipping the 15 s timer before the real-time callback comes.
    async with running_harness(
        time_skipping_env.client, tmp_path, poll_schedule=[(60, 15)]
    ) as harness:
        handle = await harness.start("Pass", amount="250")
        reference = handle.id.removeprefix("deposit-")
        row = await harness.ledger_row(handle)
        result = await handle.result()

        assert result.outcome == Outcome.APPROVED
        assert result.decided_by == DecidedBy.CALLBACK
        assert row.outcome == "approved" and row.amount == Decimal("250")
        assert len(harness.sim_requests(reference, "MPesaDeposit")) == 1
        assert len(harness.sim_requests(reference, "Status")) == 1
        callbacks = harness.ledger.callbacks(reference)
        assert [c.result for c in callbacks].count("signalled") == 1


async def test_cancel_callback_ends_the_deposit_cancelled(time_skipping_env, tmp_path):
    async with running_harness(
        time_skipping_env.client, tmp_path, poll_schedule=[(60, 15)]
    ) as harness:
        handle = await harness.start("Cancel")
        await harness.ledger_row(handle)
        result = await handle.result()

        assert (result.outcome, result.decided_by) == (
            Outcome.CANCELLED,
            DecidedBy.CALLBACK,
        )


async def test_lost_callback_times_out_and_polling_finds_the_approval(
    time_skipping_env, tmp_path
):
    # K1: the approval callback never comes; the timer expires, polling decides.
    async with running_harness(time_skipping_env.client, tmp_path) as harness:
        handle = await harness.start("Silent")
        result = await handle.result()

        assert (result.outcome, result.decided_by) == (Outcome.APPROVED, DecidedBy.POLL)
        reference = handle.id.removeprefix("deposit-")
        assert len(harness.sim_requests(reference, "MPesaDeposit")) == 1
        assert harness.ledger.outcome(reference).outcome == "approved"


async def test_deadline_ends_a_never_decided_deposit_in_needs_review(
    time_skipping_env, tmp_path
):
    # Invariant 6: the overall deadline expires (skipped, not slept), one last status
    # check still says Pending, so nobody guesses: needs_review.
    async with running_harness(
        time_skipping_env.client,
        tmp_path,
        poll_schedule=[(60, 15)],
        deadline_seconds=10,
    ) as harness:
        handle: WorkflowHandle = await harness.start("stays pending")
        result = await handle.result()
        state = await handle.query(DepositWorkflow.state)

        assert (result.outcome, result.decided_by) == (
            Outcome.NEEDS_REVIEW,
            DecidedBy.DEADLINE,
        )
        assert state.status == DepositStatus.NEEDS_REVIEW
        assert "Pending" in (result.reason or "")
        reference = handle.id.removeprefix("deposit-")
        assert len(harness.sim_requests(reference, "Status")) == 1


async def test_rejected_create_ends_rejected_with_xprizos_reason(
    time_skipping_env, tmp_path
):
    async with running_harness(time_skipping_env.client, tmp_path) as harness:
        handle = await harness.start("Reject")
        result = await handle.result()

        assert (result.outcome, result.decided_by) == (
            Outcome.REJECTED,
            DecidedBy.CREATE,
        )
        assert "Reject" in (result.reason or "")
        reference = handle.id.removeprefix("deposit-")
        assert harness.sim_requests(reference, "Status") == []
