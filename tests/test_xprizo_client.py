"""Tests for the Xprizo client over real HTTP: the simulator and a stub server."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from simulator.server import BackgroundServer
from simulator.testing import RunningSimulator
from xprizo import (
    CreatedDeposit,
    StatusReport,
    Verdict,
    XprizoClient,
    XprizoCredentialsError,
    XprizoError,
    XprizoRateLimitedError,
    XprizoRejectedError,
    XprizoTransientError,
    map_status,
)

API_KEY = "client-test-key-6f1c2a"
ACCOUNT_ID = 4242
PHONE = "254712345678"


def _reference() -> str:
    return f"dep-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with RunningSimulator(
        api_key=API_KEY, account_id=ACCOUNT_ID, callback_delay=0.1
    ) as running:
        yield running


class Stub:
    """A scripted HTTP server: each path answers what the test set, and records."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, str, dict[str, str], float]] = {}
        self.seen: list[dict[str, Any]] = []
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
        async def anything(path: str, request: Request) -> Response:
            self.seen.append(
                {
                    "method": request.method,
                    "path": "/" + path,
                    "query": dict(request.query_params),
                    "headers": dict(request.headers),
                    "body": await request.body(),
                }
            )
            status, body, headers, delay = self.answers.get(
                "/" + path, (200, "{}", {}, 0.0)
            )
            if delay:
                await asyncio.sleep(delay)
            return Response(body, status_code=status, headers=headers)

        self.server = BackgroundServer(app)

    def answer(
        self,
        path: str,
        status: int,
        body: str,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.answers[path] = (status, body, headers or {}, delay)


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    scripted = Stub()
    with scripted.server:
        yield scripted


def _client(base_url: str, **kwargs: Any) -> XprizoClient:
    # An explicit transport keeps environment proxies out of these local calls.
    return XprizoClient(
        base_url,
        SecretStr(API_KEY),
        ACCOUNT_ID,
        transport=httpx.AsyncHTTPTransport(),
        **kwargs,
    )


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[XprizoClient]:
    async with _client(sim.api_url) as xprizo:
        yield xprizo


@pytest.fixture
async def stub_client(stub: Stub) -> AsyncIterator[XprizoClient]:
    stub.answers.clear()
    stub.seen.clear()
    async with _client(stub.server.url + "/api", timeout=0.5) as xprizo:
        yield xprizo


async def test_create_returns_pending_deposit(client: XprizoClient) -> None:
    created = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal("150"), reference=_reference()
    )
    assert isinstance(created, CreatedDeposit)
    assert created.status == "Pending"
    assert created.transaction_id is not None and created.transaction_id > 0
    assert created.already_existed is False


async def test_status_of_created_deposit(client: XprizoClient) -> None:
    reference = _reference()
    created = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal("99.50"), reference=reference
    )
    report = await client.status_by_reference(reference)
    assert report == StatusReport(
        transaction_id=created.transaction_id,
        status="Pending",
        amount=Decimal("99.50"),
        currency="KES",
        reference=reference,
    )


async def test_status_path_is_a_setting(sim: RunningSimulator) -> None:
    reference = _reference()
    async with _client(sim.api_url, status_path="Transaction/Status") as xprizo:
        await xprizo.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference=reference
        )
        report = await xprizo.status_by_reference(reference)
    assert report.status == "Pending"
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport()) as http:
        requests = (await http.get(sim.url + "/_sim/requests")).json()
    paths = [r["path"] for r in requests if r["reference"] == reference]
    assert f"/api/Transaction/Status/{ACCOUNT_ID}" in paths


async def test_status_of_unknown_reference_is_not_found(client: XprizoClient) -> None:
    report = await client.status_by_reference(_reference())
    assert report.transaction_id is None
    assert report.status == "NotFound"


async def test_approved_deposit_maps_to_approved(
    client: XprizoClient, sim: RunningSimulator
) -> None:
    reference = _reference()
    await client.create_mpesa_deposit(
        mobile_number=PHONE,
        amount=Decimal("100"),
        reference=reference,
        description="Pass",
    )
    for _ in range(100):
        report = await client.status_by_reference(reference)
        if report.status != "Pending":
            break
        await asyncio.sleep(0.05)
    verdict = map_status(
        report.status, since_create=timedelta(0), not_found_grace=timedelta(minutes=2)
    )
    assert verdict is Verdict.APPROVED


async def test_second_create_adopts_existing_transaction_k2(
    client: XprizoClient,
) -> None:
    reference = _reference()
    first = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal("100"), reference=reference
    )
    again = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal("100"), reference=reference
    )
    assert first.already_existed is False
    assert again.already_existed is True
    assert again.transaction_id is None
    assert again.status == "Pending"
    assert again.message is not None and "already exists" in again.message


async def test_create_after_outcome_adopts_with_plain_variant(
    client: XprizoClient,
) -> None:
    reference = _reference()
    await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference=reference, description="fail"
    )
    for _ in range(100):
        if (await client.status_by_reference(reference)).status == "Cancelled":
            break
        await asyncio.sleep(0.05)
    again = await client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference=reference
    )
    assert again.already_existed is True
    assert again.message == "A transaction with this reference already exists"


async def test_create_rejected_with_plain_text_reason(client: XprizoClient) -> None:
    with pytest.raises(XprizoRejectedError) as caught:
        await client.create_mpesa_deposit(
            mobile_number=PHONE,
            amount=Decimal(10),
            reference=_reference(),
            description="Reject",
        )
    assert caught.value.status_code == 400
    assert caught.value.reason == "Rejected by simulator: test mode Reject"
    assert not isinstance(caught.value, XprizoCredentialsError)


async def test_create_rejected_with_json_reason(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer(
        "/api/Transaction/MPesaDeposit",
        400,
        '{"timestamp": "2026-01-01T00:00:00Z", "statusCode": 400,'
        ' "status": "BadRequest", "errorCode": "E1",'
        ' "message": "Invalid routing code (No Mid Set)"}',
        {"content-type": "application/json"},
    )
    with pytest.raises(XprizoRejectedError) as caught:
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference=_reference()
        )
    assert caught.value.reason == "Invalid routing code (No Mid Set)"


async def test_already_exists_as_json_is_adopted(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer(
        "/api/Transaction/MPesaDeposit",
        400,
        '{"statusCode": 400, "message": "A pending transaction with this reference'
        ' already exists (Ref:abc)"}',
    )
    created = await stub_client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference="abc"
    )
    assert created.already_existed is True


async def test_wrong_api_key_is_credentials_error(sim: RunningSimulator) -> None:
    async with XprizoClient(
        sim.api_url,
        SecretStr("wrong-secret-key"),
        ACCOUNT_ID,
        transport=httpx.AsyncHTTPTransport(),
    ) as xprizo:
        with pytest.raises(XprizoCredentialsError) as caught:
            await xprizo.status_by_reference(_reference())
    assert caught.value.status_code == 401
    assert "wrong-secret-key" not in str(caught.value)
    assert "wrong-secret-key" not in repr(caught.value)


async def test_wrong_account_is_credentials_error_403(sim: RunningSimulator) -> None:
    async with XprizoClient(
        sim.api_url, SecretStr(API_KEY), 1, transport=httpx.AsyncHTTPTransport()
    ) as xprizo:
        with pytest.raises(XprizoCredentialsError) as caught:
            await xprizo.create_mpesa_deposit(
                mobile_number=PHONE, amount=Decimal(10), reference=_reference()
            )
    assert caught.value.status_code == 403


async def test_api_key_never_in_error_messages(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer("/api/Preference", 400, f"bad key {API_KEY} given")
    with pytest.raises(XprizoRejectedError) as caught:
        await stub_client.get_preference()
    assert API_KEY not in str(caught.value)
    assert API_KEY not in caught.value.reason
    assert API_KEY not in repr(stub_client)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient_k4(
    stub_client: XprizoClient, stub: Stub, status: int
) -> None:
    stub.answer("/api/Transaction/MPesaDeposit", status, "boom")
    with pytest.raises(XprizoTransientError) as caught:
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference=_reference()
        )
    assert caught.value.status_code == status
    assert caught.value.retry_after is None


async def test_429_is_transient_with_retry_after(
    stub_client: XprizoClient, stub: Stub
) -> None:
    path = f"/api/Transaction/StatusByReference/{ACCOUNT_ID}"
    stub.answer(path, 429, "slow down", {"Retry-After": "7"})
    with pytest.raises(XprizoTransientError) as caught:
        await stub_client.status_by_reference("r")
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7.0


async def test_404_is_final_rejection(stub_client: XprizoClient, stub: Stub) -> None:
    stub.answer("/api/Preference", 404, "")
    with pytest.raises(XprizoRejectedError) as caught:
        await stub_client.get_preference()
    assert caught.value.status_code == 404
    assert caught.value.reason == "Not Found"


async def test_timeout_is_transient_k4(stub_client: XprizoClient, stub: Stub) -> None:
    stub.answer("/api/Preference", 200, "{}", delay=1.0)
    with pytest.raises(XprizoTransientError) as caught:
        await stub_client.get_preference()
    assert caught.value.status_code is None


async def test_connection_refused_is_transient_k4() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}/api") as xprizo:
        with pytest.raises(XprizoTransientError):
            await xprizo.status_by_reference("r")


async def test_unreadable_success_body_is_transient(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer("/api/Transaction/MPesaDeposit", 200, "<html>oops</html>")
    with pytest.raises(XprizoTransientError):
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference=_reference()
        )


async def test_request_headers_and_exact_amount_body(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer(
        "/api/Transaction/MPesaDeposit",
        200,
        '{"key": 9, "statusCode": 0, "status": "Pending", "value": "ok"}',
    )
    await stub_client.create_mpesa_deposit(
        mobile_number=PHONE,
        amount=Decimal("12345678901234567.10"),
        reference="ref-1",
        description="Pass",
        routing_code="RC1",
    )
    seen = stub.seen[-1]
    headers = seen["headers"]
    assert headers["x-api-key"] == API_KEY
    assert headers["x-api-version"] == "1.0"
    assert headers["accept"] == "text/plain; x-api-version=1.0"
    assert headers["content-type"] == "application/json; x-api-version=1.0"
    assert seen["body"] == (
        b'{"mobileNumber":"254712345678","accountId":4242,'
        b'"amount":12345678901234567.10,"reference":"ref-1",'
        b'"description":"Pass","routingCode":"RC1"}'
    )


async def test_create_refuses_float_and_bad_amounts(stub_client: XprizoClient) -> None:
    with pytest.raises(TypeError):
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE,
            amount=10.0,
            reference="r",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal("1.005"), reference="r"
        )


async def test_get_without_body_has_no_content_type(
    stub_client: XprizoClient, stub: Stub
) -> None:
    await stub_client.get_preference()
    assert "content-type" not in stub.seen[-1]["headers"]


async def test_webhook_preference_round_trip(client: XprizoClient, stub: Stub) -> None:
    # The stub answers 200 to anything, so later callbacks land on a local server.
    url = stub.server.url + "/hook?token=abc&x=1"
    await client.set_approval_webhook(url)
    preference = await client.get_preference()
    assert preference.approval_webhook == url
    assert url not in repr(preference)
    await client.test_approval_webhook()


async def test_errors_share_one_base() -> None:
    for error in (XprizoTransientError, XprizoRejectedError, XprizoCredentialsError):
        assert issubclass(error, XprizoError)
    assert issubclass(XprizoCredentialsError, XprizoRejectedError)


async def test_repr_hides_the_key() -> None:
    async with _client("http://127.0.0.1:1/api") as xprizo:
        assert API_KEY not in repr(xprizo)
        assert "4242" in repr(xprizo)


@pytest.mark.parametrize(
    "reason",
    [
        "A transaction with this reference already exists",
        "  a PENDING transaction with this reference   already exists (Ref:abc)\n",
        '"Error: A transaction with this reference already exists"',
    ],
)
async def test_already_exists_wording_variants_are_adopted_k2(
    stub_client: XprizoClient, stub: Stub, reason: str
) -> None:
    stub.answer("/api/Transaction/MPesaDeposit", 400, reason)
    created = await stub_client.create_mpesa_deposit(
        mobile_number=PHONE, amount=Decimal(10), reference="abc"
    )
    assert created.already_existed is True


async def test_other_400_mentioning_reference_is_still_final(
    stub_client: XprizoClient, stub: Stub
) -> None:
    stub.answer("/api/Transaction/MPesaDeposit", 400, "Invalid reference")
    with pytest.raises(XprizoRejectedError):
        await stub_client.create_mpesa_deposit(
            mobile_number=PHONE, amount=Decimal(10), reference="abc"
        )


async def test_429_retry_after_as_http_date_is_seconds_from_now(
    stub_client: XprizoClient, stub: Stub
) -> None:
    from email.utils import format_datetime

    when = datetime.now(UTC) + timedelta(seconds=30)
    path = f"/api/Transaction/StatusByReference/{ACCOUNT_ID}"
    stub.answer(path, 429, "", {"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(XprizoRateLimitedError) as caught:
        await stub_client.status_by_reference("r")
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


async def test_429_retry_after_unreadable_is_none(
    stub_client: XprizoClient, stub: Stub
) -> None:
    path = f"/api/Transaction/StatusByReference/{ACCOUNT_ID}"
    stub.answer(path, 429, "", {"Retry-After": "soon"})
    with pytest.raises(XprizoRateLimitedError) as caught:
        await stub_client.status_by_reference("r")
    assert caught.value.retry_after is None
