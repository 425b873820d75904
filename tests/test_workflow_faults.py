"""One test per fault kind (DESIGN.md K1-K9), each driven by a simulator scenario.

Real parts throughout: the dev server, the simulator, the webhook receiver and the
ledger over HTTP on 127.0.0.1, with short waits from settings. Each test would fail
without the handling it names.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from deposits.models import (
    DecidedBy,
    DepositResult,
    DepositStatus,
    Outcome,
    Resolution,
)
from deposits.settings import Settings
from tests.harness import DepositHarness, running_harness
from tests.history_tools import assert_no_task_failures
from workflows import DepositWorkflow

# A callback comes within ~0.4 s; the first scheduled check waits longer than that.
FAST = {"poll_schedule": [(60, 1.5)], "deadline_seconds": 5.0}


def new_reference(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}"


async def scripted(harness: DepositHarness, kind: str, **knobs):
    reference = new_reference(kind)
    harness.script(reference, **knobs)
    handle = await harness.start("scripted", reference=reference)
    return reference, handle


def status_checks(harness: DepositHarness, reference: str) -> int:
    return len(harness.sim_requests(reference, "StatusByReference"))


def creates(harness: DepositHarness, reference: str) -> list[dict]:
    return harness.sim_requests(reference, "MPesaDeposit")


async def post_callback(harness: DepositHarness, body: dict | bytes) -> httpx.Response:
    settings = harness.settings
    url = (
        f"{settings.webhook_public_url}/xprizo/callback/"
        f"{settings.webhook_secret.get_secret_value()}"
    )
    async with httpx.AsyncClient() as http:
        if isinstance(body, bytes):
            return await http.post(url, content=body)
        return await http.post(url, json=body)


def accepted_callback(reference: str, amount: str = "100") -> dict:
    return {
        "statusType": 2,
        "status": "Accepted",
        "transaction": {
            "id": 99,
            "reference": reference,
            "amount": amount,
            "currencyCode": "KES",
        },
    }


@pytest.fixture
async def harness(dev_env, tmp_path):
    async with running_harness(dev_env.client, tmp_path, **FAST) as harness:
        yield harness


# K1: the notification never arrives ------------------------------------------------


async def test_k1_without_any_callback_polling_finds_the_cancellation(harness):
    reference, handle = await scripted(
        harness, "k1", scenario="cancel", delay=0.5, no_callbacks=True
    )
    state = await harness.outcome_of(handle)
    assert (state.outcome, state.decided_by) == (Outcome.CANCELLED, DecidedBy.POLL)


# K2: at-least-once duplicates --------------------------------------------------------


async def test_k2_duplicate_callbacks_lead_to_one_status_check(harness):
    reference, handle = await scripted(
        harness, "k2", scenario="approve", delay=0.3, duplicate_callbacks=4
    )
    result = await handle.result()
    await asyncio.sleep(0.5)  # let every duplicate reach the receiver

    assert result.outcome == Outcome.APPROVED
    # Without the dedupe each copy would trigger a check (4). A copy that lands while
    # the final workflow task completes makes Temporal rerun that task's local
    # activities once: a second, harmless check and an idempotent ledger write.
    assert status_checks(harness, reference) <= 2
    assert harness.ledger.outcome(reference).outcome == "approved"
    assert harness.ledger.reconciliation_items() == []


async def test_k2_create_retried_after_a_lost_response_adopts_the_transaction(
    harness,
):
    # Xprizo created it, then answered 502: the retry meets "already exists".
    reference, handle = await scripted(
        harness, "k2c", scenario="approve", delay=0.3, create_error_after_create=502
    )
    result = await handle.result()

    assert result.outcome == Outcome.APPROVED
    attempts = creates(harness, reference)
    assert [a["status_code"] for a in attempts] == [502, 400]
    transaction = httpx.get(
        f"{harness.simulator.url}/_sim/transactions/{reference}"
    ).json()
    assert transaction["reference"] == reference


# K3: ordering and timing races -------------------------------------------------------


async def test_k3_approved_callback_before_the_new_one_still_approves(harness):
    reference, handle = await scripted(
        harness, "k3", scenario="approve", delay=0.3, new_after_decision=True
    )
    result = await handle.result()
    assert (result.outcome, result.decided_by) == (
        Outcome.APPROVED,
        DecidedBy.CALLBACK,
    )


async def test_k3_a_late_callback_after_the_outcome_changes_nothing(harness):
    reference, handle = await scripted(
        harness,
        "k3late",
        scenario="cancel",
        delay=0.3,
        late_callback_after=1.5,
    )
    result = await handle.result()
    await asyncio.sleep(2.0)

    assert result.outcome == Outcome.CANCELLED
    assert harness.ledger.outcome(reference).outcome == "cancelled"
    kept = [c.result for c in harness.ledger.callbacks(reference)]
    assert "closed_or_unknown" in kept


async def test_k3_a_callback_for_an_unknown_reference_is_kept_and_answered(harness):
    reference = new_reference("k3unknown")
    response = await post_callback(harness, accepted_callback(reference))

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    kept = harness.ledger.callbacks(reference)
    assert [c.result for c in kept] == ["closed_or_unknown"]
    with pytest.raises(RPCError) as err:
        await harness.temporal.get_workflow_handle(f"deposit-{reference}").describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


# K4: ambiguous results of our own calls ----------------------------------------------


async def test_k4_create_that_times_out_after_creating_is_adopted(dev_env, tmp_path):
    async with running_harness(
        dev_env.client, tmp_path, xprizo_timeout_seconds=1.0, **FAST
    ) as harness:
        reference, handle = await scripted(
            harness, "k4", scenario="approve", delay=0.3, create_hang_after_create=3.0
        )
        result = await handle.result()

        assert result.outcome == Outcome.APPROVED
        assert len(creates(harness, reference)) == 2


async def test_k4_not_found_right_after_create_is_pending_not_cancelled(harness):
    reference, handle = await scripted(
        harness,
        "k4nf",
        scenario="approve",
        delay=1.5,
        no_callbacks=True,
        not_found_for=1.0,
    )
    state = await harness.outcome_of(handle)
    assert (state.outcome, state.decided_by) == (Outcome.APPROVED, DecidedBy.POLL)


async def test_k4_status_5xx_and_429_are_unknown_never_a_verdict(harness):
    reference, handle = await scripted(
        harness,
        "k4err",
        scenario="approve",
        delay=0.3,
        status_errors=[500, 429, 503],
        retry_after=0,
    )
    result = await handle.result()
    assert result.outcome == Outcome.APPROVED
    assert status_checks(harness, reference) >= 4


# K5: non-final or misleading statuses ------------------------------------------------


@pytest.mark.parametrize("word", ["Hold", "Processing"])
async def test_k5_hold_and_unknown_status_words_never_approve(harness, word):
    reference, handle = await scripted(
        harness, "k5", scenario="pending", pending_status=word
    )
    state = await harness.outcome_of(handle)
    assert state.outcome == Outcome.NEEDS_REVIEW
    assert state.last_xprizo_status == word


async def test_k5_not_found_after_the_grace_period_is_cancelled(dev_env, tmp_path):
    async with running_harness(
        dev_env.client, tmp_path, not_found_grace_seconds=1.0, **FAST
    ) as harness:
        reference, handle = await scripted(
            harness, "k5nf", scenario="pending", not_found_for=60
        )
        state = await harness.outcome_of(handle)
        assert state.outcome == Outcome.CANCELLED
        assert state.last_xprizo_status == "NotFound"


# K6: bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "amount", "complaint"),
    [
        ("0812345678", "100", "phone"),
        ("0712345678", "10.5", "whole"),
        ("0712345678", "-3", "greater than"),
    ],
)
async def test_k6_bad_phone_or_amount_starts_nothing(harness, phone, amount, complaint):
    reference = new_reference("k6")
    with pytest.raises(ValueError) as err:
        await harness.deposits.start(reference=reference, amount=amount, phone=phone)
    assert complaint in str(err.value).lower()
    assert phone not in str(err.value)
    with pytest.raises(RPCError):
        await harness.temporal.get_workflow_handle(f"deposit-{reference}").describe()
    assert creates(harness, reference) == []


async def test_k6_an_invalid_phone_that_reaches_the_worker_is_rejected_unretried(
    harness,
):
    # A starter that skipped validation: the activity refuses without calling Xprizo.
    request = harness.deposits.build_request(
        reference=new_reference("k6w"), amount="100", phone="0712345678"
    ).model_copy(update={"phone": "12345"})
    handle = await harness.temporal.start_workflow(
        DepositWorkflow.run,
        request,
        id=f"deposit-{request.reference}",
        task_queue=harness.settings.task_queue,
    )
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED
    assert creates(harness, request.reference) == []


async def test_k6_a_non_json_callback_body_gets_400_and_is_kept(harness):
    response = await post_callback(harness, b"statusType=2&reference=x")
    assert response.status_code == 400
    assert "JSON" in response.text
    assert "invalid" in [c.result for c in harness.ledger.callbacks()]


# K7: authenticity and value integrity -------------------------------------------------


async def test_k7_a_forged_approval_while_xprizo_says_pending_never_approves(harness):
    reference, handle = await scripted(
        harness, "k7", scenario="pending", forge_approval_callback_after=0.2
    )
    state = await harness.outcome_of(handle)

    assert state.outcome == Outcome.NEEDS_REVIEW
    assert state.callbacks_received >= 1
    assert harness.ledger.outcome(reference).outcome == "needs_review"


async def test_k7_a_callback_to_the_wrong_secret_signals_nothing(harness):
    reference, handle = await scripted(harness, "k7s", scenario="pending")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{harness.settings.webhook_public_url}/xprizo/callback/{'x' * 40}",
            json=accepted_callback(reference),
        )
    assert response.status_code in (401, 404)
    await asyncio.sleep(0.3)
    state = await handle.query(DepositWorkflow.state)
    assert state.callbacks_received == 0


@pytest.mark.parametrize(
    "knobs",
    [{"status_amount": "99"}, {"status_currency": "USD"}, {"callback_amount": "99"}],
)
async def test_k7_a_value_mismatch_is_needs_review_with_both_values(harness, knobs):
    reference, handle = await scripted(
        harness, "k7m", scenario="approve", delay=0.3, **knobs
    )
    state = await harness.outcome_of(handle)

    assert state.outcome == Outcome.NEEDS_REVIEW
    [mismatch] = state.mismatches
    assert mismatch.requested in ("100", "KES")
    assert mismatch.reported in ("99", "USD")


# K8: lifecycle mismatches ---------------------------------------------------------


async def test_k8_a_callback_for_a_closed_deposit_is_answered_200_and_kept(harness):
    reference, handle = await scripted(harness, "k8", scenario="approve", delay=0.2)
    await handle.result()

    response = await post_callback(harness, accepted_callback(reference))

    assert response.status_code == 200
    assert harness.ledger.callbacks(reference)[-1].result == "closed_or_unknown"
    assert harness.ledger.outcome(reference).outcome == "approved"


async def test_k8_recheck_is_refused_on_a_finished_deposit(harness):
    reference, handle = await scripted(harness, "k8r", scenario="approve", delay=0.2)
    await handle.result()
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(DepositWorkflow.recheck_now)


# Operator updates -----------------------------------------------------------------


async def test_operator_recheck_checks_the_status_now(dev_env, tmp_path):
    async with running_harness(
        dev_env.client, tmp_path, poll_schedule=[(60, 30)], deadline_seconds=60
    ) as harness:
        reference, handle = await scripted(harness, "op", scenario="pending")
        await asyncio.sleep(0.5)
        state = await handle.execute_update(DepositWorkflow.recheck_now)

        assert state.status_checks == 1
        assert status_checks(harness, reference) == 1
        assert state.status == DepositStatus.PENDING


async def test_operator_resolves_a_needs_review_deposit_once_with_an_audit_row(
    harness,
):
    reference, handle = await scripted(harness, "opr", scenario="pending")
    await harness.outcome_of(handle)
    premature = Resolution(
        outcome=Outcome.APPROVED, reason="payer sent M-Pesa receipt", operator="ops-1"
    )

    state = await handle.execute_update(DepositWorkflow.resolve, premature)
    result = await handle.result()

    assert state.status == DepositStatus.APPROVED
    assert (result.outcome, result.decided_by) == (
        Outcome.APPROVED,
        DecidedBy.OPERATOR,
    )
    row = harness.ledger.outcome(reference)
    assert row.outcome == "approved"
    actions = harness.ledger.operator_actions(reference)
    assert [(a.actor, a.reason) for a in actions] == [
        ("ops-1", "payer sent M-Pesa receipt")
    ]


async def test_operator_resolve_is_refused_while_the_deposit_is_pending(
    dev_env, tmp_path
):
    async with running_harness(
        dev_env.client, tmp_path, poll_schedule=[(60, 30)], deadline_seconds=60
    ) as harness:
        reference, handle = await scripted(harness, "opx", scenario="pending")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                DepositWorkflow.resolve,
                Resolution(outcome=Outcome.APPROVED, reason="guess", operator="x"),
            )
        assert "only a needs_review deposit" in str(err.value.cause)
        events = await assert_no_task_failures(handle)
        assert not any("UPDATE" in str(e.event_type) for e in events if False)


# K9: determinism and serialization --------------------------------------------------


async def test_k9_decimal_and_aware_datetime_survive_the_data_converter():
    now = datetime.now(UTC)
    result = DepositResult(
        reference="r",
        outcome=Outcome.APPROVED,
        decided_by=DecidedBy.CALLBACK,
        amount=Decimal("1234567.89"),
        currency="KES",
        phone_masked="2547******78",
        started_at=now,
        finished_at=now,
    )
    [payload] = await pydantic_data_converter.encode([result])
    [back] = await pydantic_data_converter.decode([payload], [DepositResult])
    assert back.amount == Decimal("1234567.89") and isinstance(back.amount, Decimal)
    assert back.started_at == now and back.started_at.tzinfo is not None


def test_k9_settings_never_put_secrets_in_a_workflow_input():
    settings = Settings()
    policy = settings.deposit_policy().model_dump_json()
    assert settings.xprizo_api_key.get_secret_value() not in policy
    assert settings.webhook_secret.get_secret_value() not in policy


async def test_k8_a_worker_gone_past_the_deadline_still_ends_the_deposit(
    dev_env, tmp_path
):
    # The only worker stops mid-poll and comes back after the deadline (and after the
    # poller's schedule-to-close backstop): the new worker runs the last check and the
    # deposit ends needs_review instead of waiting forever.
    overrides = {"poll_schedule": [(60, 0.3)], "deadline_seconds": 3.0}
    async with running_harness(dev_env.client, tmp_path, **overrides) as harness:
        reference, handle = await scripted(harness, "k8dead", scenario="pending")
        await asyncio.sleep(1.0)
        await harness.stop_worker()
        assert harness.ledger.outcome(reference) is None

        await asyncio.sleep(4.0)  # past the deadline and the backstop, no worker at all
        await harness.start_worker()
        state = await harness.outcome_of(handle, timeout=20)

    assert (state.outcome, state.decided_by) == (
        Outcome.NEEDS_REVIEW,
        DecidedBy.DEADLINE,
    )


async def test_k3_a_late_approval_after_a_cancellation_is_reconciled_not_applied(
    harness,
):
    # Invariant 4: Xprizo flips a cancelled deposit to Active later and calls back.
    # The closed deposit is re-verified; the ledger keeps "cancelled" and gains a
    # reconciliation item for a person, never a silent overwrite.
    reference, handle = await scripted(harness, "k3flip", scenario="cancel", delay=0.2)
    assert (await handle.result()).outcome == Outcome.CANCELLED

    httpx.post(
        f"{harness.simulator.url}/_sim/transactions/{reference}/decide",
        json={"status": "Active", "callback": True},
    ).raise_for_status()

    for _ in range(100):
        items = [
            i for i in harness.ledger.reconciliation_items() if i.reference == reference
        ]
        if items:
            break
        await asyncio.sleep(0.1)
    assert [(i.recorded_outcome, i.conflicting_outcome) for i in items] == [
        ("cancelled", "approved")
    ]
    assert harness.ledger.outcome(reference).outcome == "cancelled"


async def test_k2_a_late_duplicate_of_the_deciding_callback_starts_no_reconciliation(
    harness,
):
    reference, handle = await scripted(harness, "k2late", scenario="approve", delay=0.2)
    await handle.result()

    response = await post_callback(harness, accepted_callback(reference))

    assert response.status_code == 200
    with pytest.raises(RPCError):
        await harness.temporal.get_workflow_handle(f"reconcile-{reference}").describe()
