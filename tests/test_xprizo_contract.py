"""Contract tests: the Xprizo client against the simulator over real HTTP.

Every endpoint the product uses, with the documented headers, and every error class
the client raises, each produced by the simulator rather than a stub.
"""

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from simulator.testing import CallbackRecorder, RunningSimulator
from xprizo import (
    Preference,
    XprizoBadResponseError,
    XprizoClient,
    XprizoConnectionError,
    XprizoCredentialsError,
    XprizoError,
    XprizoRateLimitedError,
    XprizoRejectedError,
    XprizoServerError,
    XprizoTimeoutError,
    XprizoTransientError,
)

API_KEY = "contract-key-" + uuid.uuid4().hex
ACCOUNT_ID = 5151
PHONE = "254712345678"

Call = Callable[[XprizoClient], Awaitable[Any]]


@pytest.fixture(scope="module")
def recorder() -> Iterator[CallbackRecorder]:
    with CallbackRecorder() as running:
        yield running


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with RunningSimulator(
        api_key=API_KEY, account_id=ACCOUNT_ID, callback_delay=0.1
    ) as running:
        yield running


@pytest.fixture
async def client(
    sim: RunningSimulator, recorder: CallbackRecorder
) -> AsyncIterator[XprizoClient]:
    sim.clear_faults()
    async with _client(sim.api_url) as xprizo:
        await xprizo.set_approval_webhook(recorder.callback_url)
        yield xprizo
    sim.clear_faults()


def _client(base_url: str, key: str = API_KEY, **kwargs: Any) -> XprizoClient:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("account_id", ACCOUNT_ID)
    account_id = kwargs.pop("account_id")
    return XprizoClient(
        base_url,
        SecretStr(key),
        account_id,
        transport=httpx.AsyncHTTPTransport(),
        **kwargs,
    )


def _reference() -> str:
    return f"ct-{uuid.uuid4().hex[:12]}"


async def _create(xprizo: XprizoClient) -> Any:
    return await xprizo.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal("10"), reference=_reference()
    )


async def _status(xprizo: XprizoClient) -> Any:
    return await xprizo.status_by_reference(_reference())


async def _set_webhook(xprizo: XprizoClient) -> Any:
    return await xprizo.set_approval_webhook("http://127.0.0.1:9/hook")


async def _test_webhook(xprizo: XprizoClient) -> Any:
    return await xprizo.test_approval_webhook()


async def _preference(xprizo: XprizoClient) -> Any:
    return await xprizo.get_preference()


ENDPOINTS: dict[str, Call] = {
    "create": _create,
    "status": _status,
    "set_webhook": _set_webhook,
    "test_webhook": _test_webhook,
    "preference": _preference,
}


# -- every endpoint ----------------------------------------------------------------


async def test_create_sends_documented_headers_and_body(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    created = await client.create_mpesa_deposit(
        mobile_number=PHONE,
        amount=Decimal("250.50"),
        reference=reference,
        description="order 1",
        routing_code="RC-1",
    )
    assert created.status == "Pending" and created.transaction_id
    (request,) = sim.requests(reference, "create")
    assert request["path"] == "/api/Transaction/MPesaDeposit"
    assert request["headers"] == {
        "x-api-version": "1.0",
        "accept": "text/plain; x-api-version=1.0",
        "content-type": "application/json; x-api-version=1.0",
    }
    held = sim.transaction(reference)
    assert held["amount"] == Decimal("250.50")
    assert held["routing_code"] == "RC-1" and held["description"] == "order 1"


@pytest.mark.parametrize(
    ("status_path", "served_path"),
    [
        ("Transaction/StatusByReference", "/api/Transaction/StatusByReference/5151"),
        ("Transaction/Status", "/api/Transaction/Status/5151"),
        ("/Transaction/Status/{account_id}/", "/api/Transaction/Status/5151"),
    ],
)
async def test_status_path_setting_reaches_the_endpoint(
    sim: RunningSimulator, status_path: str, served_path: str
) -> None:
    reference = _reference()
    async with _client(sim.api_url, status_path=status_path) as xprizo:
        await xprizo.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference=reference
        )
        report = await xprizo.status_by_reference(reference)
    assert report.status == "Pending" and report.reference == reference
    (request,) = sim.requests(reference, "status")
    assert request["path"] == served_path
    assert "content-type" not in request["headers"]
    assert request["headers"]["accept"] == "text/plain; x-api-version=1.0"


async def test_set_webhook_url_with_query_round_trips_encoded(
    client: XprizoClient, recorder: CallbackRecorder
) -> None:
    url = recorder.callback_url + "?token=a b&x=1/2"
    await client.set_approval_webhook(url)
    preference = await client.get_preference()
    assert isinstance(preference, Preference)
    assert preference.approval_webhook == url
    assert preference.raw["accountId"] == ACCOUNT_ID
    assert url not in repr(preference)


async def test_test_webhook_makes_the_simulator_call_back_with_type_zero(
    client: XprizoClient, recorder: CallbackRecorder
) -> None:
    await client.test_approval_webhook()
    body = await recorder.wait_for(lambda b: b["statusType"] == 0)
    assert body["status"] == "None" and body["transaction"] is None


async def test_preference_without_webhook_is_none(sim: RunningSimulator) -> None:
    with RunningSimulator(api_key=API_KEY, account_id=ACCOUNT_ID) as fresh:
        async with _client(fresh.api_url) as xprizo:
            assert (await xprizo.get_preference()).approval_webhook is None
            with pytest.raises(XprizoRejectedError) as caught:
                await xprizo.test_approval_webhook()
    assert caught.value.reason == "No approval webhook is set"


async def test_set_webhook_refuses_a_non_http_url(client: XprizoClient) -> None:
    with pytest.raises(XprizoRejectedError) as caught:
        await client.set_approval_webhook("ftp://example.invalid/hook")
    assert caught.value.status_code == 400


# -- every error class, on every endpoint --------------------------------------------


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("code", [500, 502, 503])
async def test_5xx_on_any_endpoint_is_server_error_k4(
    client: XprizoClient, sim: RunningSimulator, endpoint: str, code: int
) -> None:
    sim.set_faults(errors={endpoint: [code]}, retry_after=None)
    with pytest.raises(XprizoServerError) as caught:
        await ENDPOINTS[endpoint](client)
    assert caught.value.status_code == code
    assert caught.value.retryable and caught.value.retry_after is None
    assert "Simulated fault" in (caught.value.reason or "")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_429_on_any_endpoint_is_rate_limited_with_retry_after_k4(
    client: XprizoClient, sim: RunningSimulator, endpoint: str
) -> None:
    sim.set_faults(errors={endpoint: [429]}, retry_after=4)
    with pytest.raises(XprizoRateLimitedError) as caught:
        await ENDPOINTS[endpoint](client)
    assert caught.value.status_code == 429 and caught.value.retry_after == 4.0
    assert isinstance(caught.value, XprizoTransientError)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_final_4xx_on_any_endpoint_is_rejected_with_reason(
    client: XprizoClient, sim: RunningSimulator, endpoint: str
) -> None:
    sim.set_faults(errors={endpoint: [404]})
    with pytest.raises(XprizoRejectedError) as caught:
        await ENDPOINTS[endpoint](client)
    assert caught.value.status_code == 404
    assert caught.value.reason == "Simulated fault 404"
    assert not caught.value.retryable


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_slow_answer_on_any_endpoint_is_a_timeout_k4(
    sim: RunningSimulator, recorder: CallbackRecorder, endpoint: str
) -> None:
    sim.set_faults(slow={endpoint: 0.6})
    try:
        async with _client(sim.api_url, timeout=0.15) as impatient:
            with pytest.raises(XprizoTimeoutError) as caught:
                await ENDPOINTS[endpoint](impatient)
    finally:
        sim.clear_faults()
    assert caught.value.status_code is None and caught.value.retryable


@pytest.mark.parametrize("endpoint", ["create", "status", "preference"])
async def test_unreadable_success_body_is_bad_response_k5(
    client: XprizoClient, sim: RunningSimulator, endpoint: str
) -> None:
    sim.set_faults(garbled=[endpoint])
    with pytest.raises(XprizoBadResponseError) as caught:
        await ENDPOINTS[endpoint](client)
    assert caught.value.retryable


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_wrong_key_on_any_endpoint_is_credentials_error_401(
    sim: RunningSimulator, endpoint: str
) -> None:
    wrong = "wrong-key-" + uuid.uuid4().hex
    async with _client(sim.api_url, key=wrong) as xprizo:
        with pytest.raises(XprizoCredentialsError) as caught:
            await ENDPOINTS[endpoint](xprizo)
    assert caught.value.status_code == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert wrong not in repr(xprizo)


@pytest.mark.parametrize("endpoint", ["create", "status"])
async def test_wallet_without_rights_is_credentials_error_403(
    sim: RunningSimulator, endpoint: str
) -> None:
    async with _client(sim.api_url, account_id=ACCOUNT_ID + 1) as xprizo:
        with pytest.raises(XprizoCredentialsError) as caught:
            await ENDPOINTS[endpoint](xprizo)
    assert caught.value.status_code == 403


async def test_connection_refused_is_connection_error_k4() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}/api") as xprizo:
        with pytest.raises(XprizoConnectionError) as caught:
            await xprizo.status_by_reference("r")
    assert caught.value.retryable


async def test_both_already_exists_answers_are_adopted_k2(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    first = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference=reference
    )
    pending_again = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference=reference
    )
    assert pending_again.already_existed
    assert pending_again.message == (
        f"A pending transaction with this reference already exists (Ref:{reference})"
    )
    sim.decide(reference, "Active", callback=False)
    decided_again = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference=reference
    )
    assert decided_again.already_existed
    assert decided_again.message == "A transaction with this reference already exists"
    assert first.already_existed is False
    assert [r["status_code"] for r in sim.requests(reference, "create")] == [
        200,
        400,
        400,
    ]


async def test_invalid_create_body_is_rejected_with_json_reason(
    client: XprizoClient,
) -> None:
    with pytest.raises(XprizoRejectedError) as caught:
        await client.create_mpesa_deposit(
            mobile_number=" ", amount=Decimal(10), reference=_reference()
        )
    assert (
        caught.value.reason == "mobileNumber is required and must be a non-empty string"
    )


async def test_every_error_shares_one_base_and_a_retry_class() -> None:
    transient = (
        XprizoTimeoutError,
        XprizoConnectionError,
        XprizoServerError,
        XprizoRateLimitedError,
        XprizoBadResponseError,
    )
    for error in transient:
        assert issubclass(error, XprizoTransientError) and error.retryable
    for error in (XprizoRejectedError, XprizoCredentialsError):
        assert issubclass(error, XprizoError) and not error.retryable


# -- secrets stay out of logs ----------------------------------------------------------


async def test_api_key_and_webhook_secret_never_logged(
    client: XprizoClient,
    sim: RunningSimulator,
    recorder: CallbackRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "hook-secret-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    url = f"{recorder.callback_url}?token={secret}"
    await client.set_approval_webhook(url)
    sim.set_faults(errors={"status": [500, 429]})
    for _ in range(2):
        with pytest.raises(XprizoTransientError):
            await _status(client)
    await _create(client)
    await client.get_preference()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "SetApprovalWebhook" in text  # httpx logged the call, redacted
    assert API_KEY not in text
    assert secret not in text
