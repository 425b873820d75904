"""Tests for the Xprizo simulator over real HTTP, with a local callback receiver."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from simulator import Scenario, ScenarioKind, scenario_from_description
from simulator.testing import CallbackRecorder, RunningSimulator

API_KEY = "sim-test-key-93b0"
ACCOUNT_ID = 77
PHONE = "254712345678"
HEADERS = {"x-api-key": API_KEY, "x-api-version": "1.0"}


def _reference() -> str:
    return f"sim-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def recorder() -> Iterator[CallbackRecorder]:
    with CallbackRecorder() as running:
        yield running


@pytest.fixture(scope="module")
def sim(recorder: CallbackRecorder) -> Iterator[RunningSimulator]:
    with RunningSimulator(
        api_key=API_KEY, account_id=ACCOUNT_ID, callback_delay=0.2
    ) as running:
        yield running


@pytest.fixture
async def http(
    sim: RunningSimulator, recorder: CallbackRecorder
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=sim.url, transport=httpx.AsyncHTTPTransport(), headers=HEADERS
    ) as client:
        answer = await client.put(
            "/api/Preference/SetApprovalWebhook",
            params={"url": recorder.callback_url},
        )
        assert answer.status_code == 200
        yield client


async def _create(
    http: httpx.AsyncClient,
    reference: str,
    description: str | None = None,
    amount: str = "250",
) -> httpx.Response:
    # Written by hand so the amount travels as an exact JSON number.
    extra = "" if description is None else f', "description": "{description}"'
    body = (
        f'{{"mobileNumber": "{PHONE}", "accountId": {ACCOUNT_ID}, '
        f'"amount": {amount}, "reference": "{reference}"{extra}}}'
    )
    return await http.post(
        "/api/Transaction/MPesaDeposit",
        content=body,
        headers={"Content-Type": "application/json; x-api-version=1.0"},
    )


async def _status(http: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    answer = await http.get(
        f"/api/Transaction/StatusByReference/{ACCOUNT_ID}",
        params={"reference": reference},
    )
    assert answer.status_code == 200
    return answer.json()


def _for(reference: str, status_type: int) -> Any:
    def matches(body: dict[str, Any]) -> bool:
        transaction = body.get("transaction") or {}
        return (
            transaction.get("reference") == reference
            and body.get("statusType") == status_type
        )

    return matches


@pytest.mark.parametrize(
    ("description", "kind"),
    [
        ("Pass", ScenarioKind.APPROVE),
        ("test SUCCESS please", ScenarioKind.APPROVE),
        ("Cancel", ScenarioKind.CANCEL),
        ("fail", ScenarioKind.CANCEL),
        ("Silent", ScenarioKind.SILENT),
        ("reject", ScenarioKind.REJECT),
        ("passport fee", ScenarioKind.PENDING),
        ("", ScenarioKind.PENDING),
        (None, ScenarioKind.PENDING),
    ],
)
def test_scenario_chosen_from_description_keyword(
    description: str | None, kind: ScenarioKind
) -> None:
    assert scenario_from_description(description).scenario is kind


async def test_approve_scenario_sends_new_then_accepted_callbacks(
    http: httpx.AsyncClient, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    created = await _create(http, reference, "Pass", amount="250.50")
    assert created.status_code == 200
    data = created.json()
    assert data["status"] == "Pending" and data["key"] > 0

    new = await recorder.wait_for(_for(reference, 1))
    assert new["status"] == "New"
    assert new["transaction"]["id"] == 0
    assert new["transaction"]["currencyCode"] == "KES"
    assert new["transaction"]["amount"] == Decimal("250.50")

    accepted = await recorder.wait_for(_for(reference, 2))
    assert accepted["status"] == "Accepted"
    assert accepted["transaction"]["id"] == data["key"]
    assert "+00:00" in accepted["transaction"]["date"]
    assert await _status(http, reference) == {
        "id": data["key"],
        "description": "Active",
        "amount": 250.5,
        "currencyCode": "KES",
        "reference": reference,
    }


async def test_cancel_scenario_cancels_and_calls_back(
    http: httpx.AsyncClient, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    assert (await _create(http, reference, "Cancel")).status_code == 200
    cancelled = await recorder.wait_for(_for(reference, 4))
    assert cancelled["status"] == "Cancelled"
    assert (await _status(http, reference))["description"] == "Cancelled"


async def test_silent_scenario_approves_without_approval_callback_k1(
    http: httpx.AsyncClient, recorder: CallbackRecorder, sim: RunningSimulator
) -> None:
    reference = _reference()
    assert (await _create(http, reference, "Silent")).status_code == 200
    await recorder.wait_for(_for(reference, 1))
    for _ in range(100):
        if (await _status(http, reference))["description"] == "Active":
            break
        await asyncio.sleep(0.05)
    assert (await _status(http, reference))["description"] == "Active"
    sent = (await http.get("/_sim/callbacks")).json()
    assert [c["statusType"] for c in sent if c["reference"] == reference] == [1]
    assert not [
        b for b in recorder.drain() if _for(reference, 2)(b) or _for(reference, 4)(b)
    ]


async def test_reject_scenario_refuses_create_with_plain_text(
    http: httpx.AsyncClient,
) -> None:
    reference = _reference()
    answer = await _create(http, reference, "Reject")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "Rejected by simulator: test mode Reject"
    assert (await _status(http, reference)) == {"id": 0, "description": "NotFound"}


async def test_pending_scenario_stays_pending(
    http: httpx.AsyncClient, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    assert (await _create(http, reference, "just a deposit")).status_code == 200
    await recorder.wait_for(_for(reference, 1))
    assert (await _status(http, reference))["description"] == "Pending"


async def test_control_endpoint_overrides_description(
    http: httpx.AsyncClient, recorder: CallbackRecorder
) -> None:
    reference = _reference()
    chosen = await http.put(
        f"/_sim/scenarios/{reference}", json={"scenario": "cancel", "delay": 0.05}
    )
    assert chosen.status_code == 200
    assert (await _create(http, reference, "Pass")).status_code == 200
    await recorder.wait_for(_for(reference, 4))
    transaction = (await http.get(f"/_sim/transactions/{reference}")).json()
    assert transaction["status"] == "Cancelled"
    assert transaction["scenario"]["scenario"] == "cancel"


async def test_control_endpoint_refuses_unknown_scenario(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.put("/_sim/scenarios/x", json={"scenario": "explode"})
    assert answer.status_code == 422
    answer = await http.put(
        "/_sim/scenarios/x", json={"scenario": "approve", "typo": 1}
    )
    assert answer.status_code == 422


async def test_duplicate_create_is_refused_and_recorded_k2(
    http: httpx.AsyncClient,
) -> None:
    reference = _reference()
    assert (await _create(http, reference)).status_code == 200
    again = await _create(http, reference)
    assert again.status_code == 400
    assert again.text == (
        f"A pending transaction with this reference already exists (Ref:{reference})"
    )
    requests = (await http.get("/_sim/requests")).json()
    creates = [
        r
        for r in requests
        if r["reference"] == reference and r["path"].endswith("MPesaDeposit")
    ]
    assert [r["status_code"] for r in creates] == [200, 400]
    assert all(r["method"] == "POST" and r["time"] for r in creates)


async def test_status_unknown_reference_is_not_found(http: httpx.AsyncClient) -> None:
    assert await _status(http, _reference()) == {"id": 0, "description": "NotFound"}
    answer = await http.get(
        f"/api/Transaction/Status/{ACCOUNT_ID}", params={"reference": "nope"}
    )
    assert answer.json() == {"id": 0, "description": "NotFound"}


async def test_missing_or_wrong_key_is_401_and_wrong_account_403(
    sim: RunningSimulator,
) -> None:
    async with httpx.AsyncClient(
        base_url=sim.url, transport=httpx.AsyncHTTPTransport()
    ) as anonymous:
        path = f"/api/Transaction/StatusByReference/{ACCOUNT_ID}"
        assert (await anonymous.get(path, params={"reference": "r"})).status_code == 401
        wrong = await anonymous.get(
            path, params={"reference": "r"}, headers={"x-api-key": "nope"}
        )
        assert wrong.status_code == 401
        other_account = await anonymous.get(
            "/api/Transaction/StatusByReference/1",
            params={"reference": "r"},
            headers=HEADERS,
        )
        assert other_account.status_code == 403
        create = await anonymous.post(
            "/api/Transaction/MPesaDeposit",
            json={"mobileNumber": PHONE, "accountId": 1, "amount": 5, "reference": "r"},
            headers=HEADERS,
        )
        assert create.status_code == 403


async def test_invalid_create_body_gets_json_reason(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/Transaction/MPesaDeposit",
        json={
            "mobileNumber": PHONE,
            "accountId": ACCOUNT_ID,
            "amount": "10",
            "reference": _reference(),
        },
    )
    assert answer.status_code == 400
    assert "amount" in answer.json()["message"]
    answer = await _create(http, _reference(), amount="10.001")
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400


async def test_test_webhook_sends_status_type_zero(
    http: httpx.AsyncClient, recorder: CallbackRecorder
) -> None:
    assert (await http.get("/api/Preference/TestApprovalWebhook")).status_code == 200
    test_call = await recorder.wait_for(lambda body: body["statusType"] == 0)
    assert test_call["transaction"] is None
    preference = (await http.get("/api/Preference")).json()
    assert preference["approvalWebhook"] == recorder.callback_url


def test_scenario_model_has_optional_knobs() -> None:
    scenario = Scenario.model_validate({"scenario": "approve"})
    assert scenario.delay is None and scenario.reason is None
