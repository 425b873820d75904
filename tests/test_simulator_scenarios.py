"""One test per simulator scenario: what the simulator does and how the client sees it.

Every test drives the real simulator over HTTP on 127.0.0.1 with the real Xprizo
client, and receives callbacks on a real local webhook. The K-numbers name the fault
kinds of the design that each scenario reproduces.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from simulator import Scenario, scenario_from_description
from simulator.scenarios import DESCRIPTION_KEYWORDS
from simulator.testing import CallbackRecorder, RunningSimulator
from xprizo import (
    Callback,
    CreatedDeposit,
    StatusReport,
    Verdict,
    XprizoClient,
    XprizoRateLimitedError,
    XprizoRejectedError,
    XprizoServerError,
    XprizoTimeoutError,
    XprizoTransientError,
    map_status,
)

API_KEY = "scenario-key-" + uuid.uuid4().hex
ACCOUNT_ID = 3131
PHONE = "254712345678"
AMOUNT = Decimal("100")
GRACE = timedelta(minutes=2)
T = TypeVar("T")


@pytest.fixture(scope="module")
def recorder() -> Iterator[CallbackRecorder]:
    with CallbackRecorder() as running:
        yield running


@pytest.fixture(scope="module")
def sim(recorder: CallbackRecorder) -> Iterator[RunningSimulator]:
    with RunningSimulator(
        api_key=API_KEY, account_id=ACCOUNT_ID, callback_delay=0.1
    ) as running:
        yield running


@pytest.fixture
async def client(
    sim: RunningSimulator, recorder: CallbackRecorder
) -> AsyncIterator[XprizoClient]:
    async with _client(sim, timeout=5.0) as xprizo:
        await xprizo.set_approval_webhook(recorder.callback_url)
        yield xprizo


def _client(sim: RunningSimulator, *, timeout: float) -> XprizoClient:
    return XprizoClient(
        sim.api_url,
        SecretStr(API_KEY),
        ACCOUNT_ID,
        timeout=timeout,
        transport=httpx.AsyncHTTPTransport(),
    )


def _reference() -> str:
    return f"sc-{uuid.uuid4().hex[:12]}"


async def _create(
    client: XprizoClient, reference: str, description: str | None = None
) -> CreatedDeposit:
    return await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=AMOUNT, reference=reference, description=description
    )


def _verdict(report: StatusReport, since_create: timedelta = timedelta(0)) -> Verdict:
    return map_status(report.status, since_create=since_create, not_found_grace=GRACE)


async def _eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float = 5.0,
) -> T:
    """Ask again until the answer satisfies `done`: the simulator decides on a timer."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


async def _status_until(
    client: XprizoClient, reference: str, word: str
) -> StatusReport:
    report = await _eventually(
        lambda: client.status_by_reference(reference), lambda r: r.status == word
    )
    assert report.status == word
    return report


def _for(reference: str, status_type: int) -> Callable[[dict[str, Any]], bool]:
    def matches(body: dict[str, Any]) -> bool:
        transaction = body.get("transaction") or {}
        return (
            transaction.get("reference") == reference
            and body.get("statusType") == status_type
        )

    return matches


def _types_received(recorder: CallbackRecorder, reference: str) -> list[int]:
    return [
        body["statusType"]
        for body in recorder.drain()
        if (body.get("transaction") or {}).get("reference") == reference
    ]


# -- outcomes ------------------------------------------------------------------------


async def test_approve_after_delay_calls_back_and_status_approves(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0.2)
    created = await _create(client, reference)
    assert created.status == "Pending"
    assert _verdict(await client.status_by_reference(reference)) is Verdict.PENDING

    body = await recorder.wait_for(_for(reference, 2))
    callback = Callback.model_validate(body)
    assert callback.reference == reference and callback.status == "Accepted"
    assert _verdict(await client.status_by_reference(reference)) is Verdict.APPROVED


async def test_cancel_after_delay_calls_back_and_status_cancels(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "cancel", delay=0.1)
    await _create(client, reference)
    await recorder.wait_for(_for(reference, 4))
    assert _verdict(await client.status_by_reference(reference)) is Verdict.CANCELLED


@pytest.mark.parametrize("word", ["Void", "Rejected", "Reject"])
async def test_cancel_with_other_final_words_maps_to_cancelled(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder, word: str
) -> None:
    reference = _reference()
    sim.script(reference, "cancel", delay=0, final_status=word, cancel_callback_type=3)
    await _create(client, reference)
    body = await recorder.wait_for(_for(reference, 3))
    assert body["status"] == "Rejected"
    report = await _status_until(client, reference, word)
    assert _verdict(report) is Verdict.CANCELLED


async def test_approve_with_unknown_final_word_never_approves_k5(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0, final_status="Settled")
    await _create(client, reference)
    await recorder.wait_for(_for(reference, 2))
    report = await _status_until(client, reference, "Settled")
    assert _verdict(report) is Verdict.PENDING


async def test_pending_never_decides_k5(
    client: XprizoClient, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    await _create(client, reference, "a plain deposit")
    await recorder.wait_for(_for(reference, 1))
    assert _verdict(await client.status_by_reference(reference)) is Verdict.PENDING


@pytest.mark.parametrize("word", ["Hold", "Processing"])
async def test_pending_status_word_hold_or_unknown_stays_pending_k5(
    client: XprizoClient, sim: RunningSimulator, word: str
) -> None:
    reference = _reference()
    sim.script(reference, "pending", pending_status=word)
    await _create(client, reference)
    report = await client.status_by_reference(reference)
    assert report.status == word
    assert _verdict(report) is Verdict.PENDING


async def test_reject_as_plain_text_is_final_rejection(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "reject", reason="Invalid routing code")
    with pytest.raises(XprizoRejectedError) as caught:
        await _create(client, reference)
    assert caught.value.reason == "Invalid routing code"
    assert not caught.value.retryable


async def test_reject_as_json_keeps_xprizo_message(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(
        reference,
        "reject",
        reason="Invalid routing code (No Mid Set)",
        reject_json=True,
    )
    with pytest.raises(XprizoRejectedError) as caught:
        await _create(client, reference)
    assert caught.value.status_code == 400
    assert caught.value.reason == "Invalid routing code (No Mid Set)"


async def test_reject_in_create_body_is_a_created_deposit_saying_rejected(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "reject", reason="Declined", reject_in_body=True)
    created = await _create(client, reference)
    assert created.status == "Rejected"
    assert created.message == "Declined"
    assert (await client.status_by_reference(reference)).status == "NotFound"


# -- callbacks: lost, doubled, reordered, empty, late, forged (K1, K2, K3, K7) ---------


async def test_silent_approves_without_decision_callback_k1(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    await _create(client, reference, "Silent")
    report = await _status_until(client, reference, "Active")
    assert _verdict(report) is Verdict.APPROVED
    assert [c["statusType"] for c in sim.callbacks(reference)] == [1]


async def test_no_callbacks_at_all_still_decides_k1(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "cancel", delay=0, no_callbacks=True)
    await _create(client, reference)
    report = await _status_until(client, reference, "Cancelled")
    assert _verdict(report) is Verdict.CANCELLED
    assert sim.callbacks(reference) == []
    assert _types_received(recorder, reference) == []


async def test_duplicated_callbacks_arrive_n_times_each_k2(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0, duplicate_callbacks=3)
    await _create(client, reference)
    await _eventually(
        lambda: asyncio.to_thread(sim.callbacks, reference), lambda c: len(c) == 6
    )
    await recorder.wait_for(_for(reference, 2))
    sent = sim.callbacks(reference)
    assert [(c["statusType"], c["copy"]) for c in sent] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    assert all(c["delivered"] for c in sent)
    assert _verdict(await client.status_by_reference(reference)) is Verdict.APPROVED


async def test_approved_callback_arrives_before_new_k3(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0.05, new_after_decision=True)
    await _create(client, reference)
    await recorder.wait_for(_for(reference, 1))
    assert _types_received(recorder, reference) == [2, 1]


async def test_cancel_callback_with_every_transaction_field_null_k3(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "cancel", delay=0, null_transaction_fields=True)
    await _create(client, reference)

    def is_empty_cancel(body: dict[str, Any]) -> bool:
        return body["statusType"] == 4 and body["transaction"]["id"] is None

    body = await recorder.wait_for(is_empty_cancel)
    assert set(body["transaction"].values()) == {None}
    callback = Callback.model_validate(body)
    assert callback.reference is None and callback.transaction is not None
    assert callback.transaction.amount is None
    # The callback cannot be matched, but the status endpoint still decides.
    assert _verdict(await client.status_by_reference(reference)) is Verdict.CANCELLED


async def test_late_callback_arrives_after_the_outcome_k3(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0, late_callback_after=0.6)
    await _create(client, reference)
    report = await _status_until(client, reference, "Active")
    assert _verdict(report) is Verdict.APPROVED
    assert 2 not in _types_received(recorder, reference)
    await recorder.wait_for(_for(reference, 2))
    decided = sim.transaction(reference)["decided_at"]
    called = [c["time"] for c in sim.callbacks(reference) if c["statusType"] == 2]
    assert len(called) == 1 and called[0] > decided


async def test_forged_approval_callback_while_status_stays_pending_k7(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(reference, "pending", forge_approval_callback_after=0.05)
    await _create(client, reference)
    body = await recorder.wait_for(_for(reference, 2))
    assert body["status"] == "Accepted"
    forged = [c for c in sim.callbacks(reference) if c["statusType"] == 2]
    assert [c["forged"] for c in forged] == [True]
    report = await client.status_by_reference(reference)
    assert report.status == "Pending"
    assert _verdict(report) is Verdict.PENDING


async def test_callback_amount_and_currency_differ_from_request_k7(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    sim.script(
        reference,
        "approve",
        delay=0,
        callback_amount="1.50",
        callback_currency="USD",
    )
    await _create(client, reference)
    body = await recorder.wait_for(_for(reference, 2))
    callback = Callback.model_validate(body)
    assert callback.transaction is not None
    assert callback.transaction.amount == Decimal("1.50")
    assert callback.transaction.currency_code == "USD"
    report = await client.status_by_reference(reference)
    assert (report.amount, report.currency) == (AMOUNT, "KES")


# -- status checks: not yet visible, errors, throttling, slowness, wrong values (K4, K5)


async def test_status_not_found_just_after_create_is_pending_in_grace_k4(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", not_found_for=0.3)
    await _create(client, reference)
    report = await client.status_by_reference(reference)
    assert report.status == "NotFound" and report.transaction_id is None
    assert _verdict(report) is Verdict.PENDING
    assert _verdict(report, since_create=GRACE) is Verdict.CANCELLED
    later = await _status_until(client, reference, "Pending")
    assert later.transaction_id is not None


async def test_status_500_burst_is_transient_then_answers_k4(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", status_errors=[500, 503])
    await _create(client, reference)
    for code in (500, 503):
        with pytest.raises(XprizoServerError) as caught:
            await client.status_by_reference(reference)
        assert caught.value.status_code == code and caught.value.retryable
    assert (await client.status_by_reference(reference)).status == "Pending"


async def test_status_429_burst_carries_retry_after_k4(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", status_errors=[429, 429], retry_after=3)
    await _create(client, reference)
    for _ in range(2):
        with pytest.raises(XprizoRateLimitedError) as caught:
            await client.status_by_reference(reference)
        assert caught.value.status_code == 429
        assert caught.value.retry_after == 3.0
    assert (await client.status_by_reference(reference)).status == "Pending"


async def test_slow_status_past_the_timeout_is_a_timeout_k4(
    sim: RunningSimulator, client: XprizoClient
) -> None:
    reference = _reference()
    sim.script(reference, "pending", slow={"status": 0.5})
    await _create(client, reference)
    async with _client(sim, timeout=0.2) as impatient:
        with pytest.raises(XprizoTimeoutError):
            await impatient.status_by_reference(reference)
    started = time.monotonic()
    assert (await client.status_by_reference(reference)).status == "Pending"
    assert time.monotonic() - started >= 0.5


async def test_status_amount_and_currency_differ_from_request_k7(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=0, status_amount="99", status_currency="USD")
    await _create(client, reference)
    report = await _status_until(client, reference, "Active")
    # The word approves; only the caller's comparison with the request can refuse it.
    assert _verdict(report) is Verdict.APPROVED
    assert report.amount == Decimal("99") and report.amount != AMOUNT
    assert report.currency == "USD"


# -- the create: ambiguous answers after the transaction exists (K2, K4) -------------


async def test_create_5xx_after_creating_then_retry_adopts_k4(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", create_error_after_create=502)
    with pytest.raises(XprizoServerError) as caught:
        await _create(client, reference)
    assert caught.value.status_code == 502
    again = await _create(client, reference)
    assert again.already_existed is True
    assert (await client.status_by_reference(reference)).status == "Pending"
    creates = sim.requests(reference, "create")
    assert [r["status_code"] for r in creates] == [502, 400]


async def test_create_hang_after_creating_times_out_then_retry_adopts_k4(
    sim: RunningSimulator, client: XprizoClient
) -> None:
    reference = _reference()
    sim.script(reference, "pending", create_hang_after_create=3.0)
    async with _client(sim, timeout=0.3) as impatient:
        with pytest.raises(XprizoTimeoutError) as caught:
            await _create(impatient, reference)
    assert isinstance(caught.value, XprizoTransientError)
    assert sim.transaction(reference)["status"] == "Pending"
    again = await _create(client, reference)
    assert again.already_existed is True


async def test_create_5xx_before_creating_lets_retry_create_afresh_k4(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", create_errors=[503])
    with pytest.raises(XprizoServerError):
        await _create(client, reference)
    assert (await client.status_by_reference(reference)).status == "NotFound"
    again = await _create(client, reference)
    assert again.already_existed is False and again.transaction_id is not None


async def test_slow_create_within_the_timeout_still_creates(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    sim.script(reference, "pending", slow={"create": 0.3})
    started = time.monotonic()
    created = await _create(client, reference)
    assert time.monotonic() - started >= 0.3
    assert created.transaction_id is not None


async def test_request_log_shows_exactly_one_create_per_reference_k2(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    await _create(client, reference)
    await client.status_by_reference(reference)
    creates = sim.requests(reference, "create")
    assert len(creates) == 1
    assert creates[0]["method"] == "POST" and creates[0]["status_code"] == 200
    assert [r["endpoint"] for r in sim.requests(reference)] == ["create", "status"]


# -- driving a deposit by hand ---------------------------------------------------------


async def test_decide_by_hand_sets_status_and_calls_back(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    await _create(client, reference)
    sim.decide(reference, "Active")
    assert _verdict(await client.status_by_reference(reference)) is Verdict.APPROVED
    await recorder.wait_for(_for(reference, 2))


async def test_callback_by_hand_does_not_change_status_k7(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    await _create(client, reference)
    sim.send_callback(reference, 2, copies=2)
    await recorder.wait_for(_for(reference, 2))
    assert (await client.status_by_reference(reference)).status == "Pending"


# -- choosing scenarios ----------------------------------------------------------------


@pytest.mark.parametrize(("word", "knobs"), list(DESCRIPTION_KEYWORDS.items()))
def test_description_keyword_sets_its_knobs(word: str, knobs: dict[str, Any]) -> None:
    scenario = scenario_from_description(f"order 17 {word.lower()} please")
    expected = Scenario.model_validate(knobs)
    for name in knobs:
        assert getattr(scenario, name) == getattr(expected, name)
    assert scenario.scenario == "pending"


def test_description_outcome_and_fault_keywords_combine() -> None:
    scenario = scenario_from_description("Pass Duplicated NewLast")
    assert scenario.scenario == "approve"
    assert scenario.duplicate_callbacks == 3
    assert scenario.new_after_decision is True


async def test_description_keywords_over_http_k2(
    client: XprizoClient, sim: RunningSimulator, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    await _create(client, reference, "Cancel Duplicated")
    await _eventually(
        lambda: asyncio.to_thread(sim.callbacks, reference), lambda c: len(c) == 6
    )
    assert [c["statusType"] for c in sim.callbacks(reference)] == [1, 1, 1, 4, 4, 4]


def test_scenario_refuses_bad_knobs() -> None:
    for bad in (
        {"status_errors": [200]},
        {"duplicate_callbacks": 0},
        {"slow": {"preference": 1}},
        {"slow": {"status": -1}},
        {"reject_json": True},
        {"create_error_after_create": 302},
    ):
        with pytest.raises(ValueError):
            Scenario.model_validate(bad)


async def test_scenario_control_round_trip(sim: RunningSimulator) -> None:
    reference = _reference()
    sim.script(reference, "approve", delay=1.5, status_amount="99.5")
    async with httpx.AsyncClient(base_url=sim.url, trust_env=False) as http:
        shown = (await http.get(f"/_sim/scenarios/{reference}")).json()
        assert shown["scenario"] == "approve" and shown["status_amount"] == "99.5"
        assert (await http.delete(f"/_sim/scenarios/{reference}")).status_code == 204
        assert (await http.get(f"/_sim/scenarios/{reference}")).status_code == 404
