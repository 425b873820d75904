"""The webhook receiver over real HTTP, signalling deposits on the dev server.

No worker runs here: a signal the server accepted shows as an event in the deposit's
history, which is exactly what the receiver promises. The deposits started here are
terminated at the end; on the time-skipping server their never-taken workflow tasks
would hold its clock still for every later test.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from deposits.client import DepositClient
from deposits.models import DecidedBy, DepositResult, Outcome
from deposits.settings import Settings
from ledger import Ledger
from tests.servers import serve_in_loop
from webhook.app import create_app

SECRET = "w" * 24 + uuid.uuid4().hex
MAX_BODY = 4096


@dataclass
class Receiver:
    """A running receiver and what it writes to."""

    url: str
    ledger: Ledger
    deposits: DepositClient
    http: httpx.AsyncClient
    started: list = field(default_factory=list)

    async def post(self, body: bytes | dict, **kwargs) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(
            f"/xprizo/callback/{SECRET}", content=content, **kwargs
        )

    async def start(self, amount: str = "100") -> str:
        reference = f"wh-{uuid.uuid4().hex[:12]}"
        handle = await self.deposits.start(
            reference=reference, amount=amount, phone="0712345678", description="Pass"
        )
        self.started.append(handle)
        return reference

    async def signals(self, reference: str) -> list[dict]:
        """The callback signals the deposit's history holds, decoded."""
        handle = self.deposits.temporal.get_workflow_handle(f"deposit-{reference}")
        found = []
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_execution_signaled_event_attributes"):
                attrs = event.workflow_execution_signaled_event_attributes
                found.append(json.loads(attrs.input.payloads[0].data))
        return found

    def rows(self, **where) -> list:
        return [
            row
            for row in self.ledger.callbacks()
            if all(getattr(row, key) == value for key, value in where.items())
        ]


def receiver_settings(tmp_path, **overrides) -> Settings:
    values = {
        "task_queue": f"webhook-{uuid.uuid4().hex[:8]}",
        "ledger_url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "webhook_secret": SecretStr(SECRET),
        "webhook_max_body_bytes": MAX_BODY,
        "webhook_signal_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


async def serve_receiver(
    temporal: Client, settings: Settings, ledger: Ledger
) -> AsyncIterator[Receiver]:
    async with serve_in_loop(create_app(settings, temporal, ledger)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Receiver(url, ledger, DepositClient(temporal, settings), http)


@pytest.fixture(scope="module")
async def receiver(dev_env, tmp_path_factory) -> AsyncIterator[Receiver]:
    settings = receiver_settings(tmp_path_factory.mktemp("webhook"))
    ledger = Ledger(settings.ledger_url)
    ledger.create_schema()
    async for running in serve_receiver(dev_env.client, settings, ledger):
        yield running
        for handle in running.started:
            with contextlib.suppress(RPCError):
                await handle.terminate(reason="webhook test finished")
    ledger.close()


def callback(reference: str | None, status_type: int = 2, **transaction) -> dict:
    words = {0: "None", 1: "New", 2: "Accepted", 3: "Rejected", 4: "Cancelled"}
    return {
        "statusType": status_type,
        "status": words.get(status_type, "Other"),
        "description": "test",
        "transaction": {
            "id": 5001,
            "createdById": 1,
            "type": "MP",
            "date": "2025-01-31T10:00:00+03:00",
            "reference": reference,
            "currencyCode": "KES",
            "amount": 100,
            **transaction,
        },
    }


# --- K7 authenticity: the secret in the path ------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/xprizo/callback/not-the-secret",
        "/xprizo/callback/" + SECRET[:-1],
        "/xprizo/callback/" + SECRET + "x",
        "/xprizo/callback/",
        "/xprizo/callback",
    ],
)
async def test_a_wrong_or_missing_secret_gets_404_and_nothing_is_signalled_k7(
    receiver, path
):
    reference = await receiver.start()
    before = len(receiver.ledger.callbacks())

    answer = await receiver.http.post(path, json=callback(reference))

    assert answer.status_code == 404
    assert await receiver.signals(reference) == []
    assert len(receiver.ledger.callbacks()) == before


# --- K6 bad input: size, content type, shape ------------------------------------


async def test_a_body_past_the_cap_gets_413_while_reading_k6(receiver):
    big = b'{"statusType": 2, "pad": "' + b"x" * MAX_BODY + b'"}'

    declared = await receiver.post(big)

    async def chunks():
        # No Content-Length: the cap must hold while the body streams in.
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = await receiver.http.post(f"/xprizo/callback/{SECRET}", content=chunks())

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "larger than 4096 bytes" in streamed.json()["detail"]
    kept = receiver.rows(result="too_large")
    assert len(kept) >= 2
    assert any(len(row.raw) == MAX_BODY for row in kept)


async def test_the_body_is_json_whatever_the_content_type_claims_k6(receiver):
    reference = await receiver.start()

    answer = await receiver.post(
        callback(reference), headers={"content-type": "text/plain; charset=latin-1"}
    )

    assert answer.status_code == 200
    assert answer.json() == {"status": "success"}
    assert len(await receiver.signals(reference)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"statusType=2&reference=x", "body is not JSON"),
        (b"", "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not JSON"),
        (b"[" * 2000 + b"]" * 2000, "body is not JSON"),
        (b"[1, 2]", "body is not an Xprizo callback"),
        (b'{"status": "Accepted"}', "statusType"),
        (b'{"statusType": "two"}', "statusType"),
        (b'{"statusType": -1}', "is not a status"),
        (b'{"statusType": 2, "transaction": "abc"}', "transaction"),
    ],
)
async def test_an_unparsable_or_wrong_shaped_body_gets_400_and_is_kept_k6(
    receiver, body, message
):
    before = len(receiver.rows(result="invalid"))

    answer = await receiver.post(body)

    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    kept = receiver.rows(result="invalid")
    assert len(kept) == before + 1
    assert kept[-1].raw == body[:8192].decode("utf-8", errors="replace")


async def test_a_long_invalid_body_is_kept_truncated_k6(tmp_path, dev_env):
    settings = receiver_settings(tmp_path, webhook_max_body_bytes=64 * 1024)
    ledger = Ledger(settings.ledger_url)
    ledger.create_schema()
    async for running in serve_receiver(dev_env.client, settings, ledger):
        answer = await running.post(b"{" + b"y" * 20000)
        assert answer.status_code == 400
        [row] = running.rows(result="invalid")
        assert len(row.raw) == 8192
    ledger.close()


# --- matching: reference, then transaction id, then unmatched ----------------------


async def test_a_decisive_callback_is_signalled_to_its_deposit_by_reference(receiver):
    reference = await receiver.start()

    answer = await receiver.post(callback(f"  {reference} ", amount=100.0))

    assert answer.status_code == 200
    [signal] = await receiver.signals(reference)
    assert signal["status_type"] == 2
    assert signal["transaction_id"] == 5001
    assert Decimal(str(signal["amount"])) == Decimal("100")
    [row] = receiver.rows(reference=reference)
    assert (row.result, row.transaction_id, row.status) == (
        "signalled",
        5001,
        "Accepted",
    )


async def test_a_callback_without_reference_is_matched_by_transaction_id_k3(receiver):
    reference = await receiver.start()
    transaction_id = int(uuid.uuid4().int % 10**9) + 10
    await receiver.post(callback(reference, 3, id=transaction_id))

    answer = await receiver.post(callback(None, 4, id=transaction_id))

    assert answer.status_code == 200
    signals = await receiver.signals(reference)
    assert [s["status_type"] for s in signals] == [3, 4]
    assert receiver.rows(reference=reference)[-1].result == "signalled"


async def test_a_recorded_outcome_matches_a_later_reference_less_callback_k3(receiver):
    reference = await receiver.start()
    transaction_id = int(uuid.uuid4().int % 10**9) + 10
    now = datetime.now(UTC)
    receiver.ledger.record_outcome(
        DepositResult(
            reference=reference,
            outcome=Outcome.APPROVED,
            decided_by=DecidedBy.POLL,
            transaction_id=transaction_id,
            amount=Decimal("100"),
            currency="KES",
            phone_masked="07******78",
            started_at=now,
            finished_at=now,
        )
    )

    answer = await receiver.post(callback(None, 2, id=transaction_id))

    assert answer.status_code == 200
    assert len(await receiver.signals(reference)) == 1


@pytest.mark.parametrize(
    "transaction",
    [
        {"reference": None, "id": 987654321987},
        {"reference": None, "id": 0},
        {"reference": "has spaces inside", "id": None},
        {"reference": "x" * 65, "id": None},
        {"reference": None, "id": 2**70},
    ],
)
async def test_a_callback_matching_no_deposit_is_kept_unmatched_with_200_k3(
    receiver, transaction
):
    before = len(receiver.rows(result="unmatched"))

    answer = await receiver.post(callback(**transaction))

    assert answer.status_code == 200
    assert len(receiver.rows(result="unmatched")) == before + 1


async def test_a_callback_whose_transaction_is_null_is_kept_unmatched_k6(receiver):
    answer = await receiver.post(
        {"statusType": 3, "status": "Rejected", "transaction": None}
    )

    assert answer.status_code == 200
    assert receiver.rows(result="unmatched")


# --- K8 lifecycle, K2 duplicates, no-decision callbacks ------------------------------


async def test_a_callback_for_a_missing_deposit_is_kept_and_gets_200_k8(receiver):
    reference = f"never-started-{uuid.uuid4().hex[:8]}"

    answer = await receiver.post(callback(reference))

    assert answer.status_code == 200
    [row] = receiver.rows(reference=reference)
    assert row.result == "closed_or_unknown"


async def test_a_callback_for_a_closed_deposit_is_kept_and_gets_200_k8(receiver):
    reference = await receiver.start()
    handle = receiver.deposits.temporal.get_workflow_handle(f"deposit-{reference}")
    await handle.terminate(reason="test: closed before its callback")

    answer = await receiver.post(callback(reference))

    assert answer.status_code == 200
    assert receiver.rows(reference=reference)[-1].result == "closed_or_unknown"


async def test_a_duplicate_callback_gets_200_and_only_the_workflow_dedupes_k2(receiver):
    reference = await receiver.start()
    body = callback(reference)

    first = await receiver.post(body)
    second = await receiver.post(body)

    assert (first.status_code, second.status_code) == (200, 200)
    signals = await receiver.signals(reference)
    assert len(signals) == 2  # the workflow ignores the repeat by its own key
    assert {s["transaction_id"] for s in signals} == {5001}


@pytest.mark.parametrize(
    ("status_type", "result"),
    [(0, "no_decision"), (1, "no_decision"), (7, "unknown_type")],
)
async def test_test_new_and_unknown_callbacks_are_kept_not_signalled_k5(
    receiver, status_type, result
):
    reference = await receiver.start()

    answer = await receiver.post(callback(reference, status_type, id=0))

    assert answer.status_code == 200
    assert await receiver.signals(reference) == []
    [row] = receiver.rows(reference=reference)
    assert (row.result, row.status_type) == (result, status_type)


# --- 5xx only when the callback could not be recorded or signalled ------------------


async def test_an_unreachable_temporal_gives_503_so_xprizo_retries_k4(tmp_path):
    from devstack.stack import free_port

    settings = receiver_settings(tmp_path)
    ledger = Ledger(settings.ledger_url)
    ledger.create_schema()
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    async for running in serve_receiver(dead, settings, ledger):
        answer = await running.post(callback("some-reference"))
        assert answer.status_code == 503
        assert running.rows(result="signal_failed")
    ledger.close()


async def test_a_ledger_that_cannot_record_gives_503_k4(tmp_path, dev_env):
    settings = receiver_settings(tmp_path)
    ledger = Ledger(settings.ledger_url)  # no schema: every write fails
    async for running in serve_receiver(dev_env.client, settings, ledger):
        invalid = await running.post(b"not json")
        new = await running.post(callback("some-reference", 1))
        assert (invalid.status_code, new.status_code) == (503, 503)
    ledger.close()


# --- metrics ---------------------------------------------------------------------


async def test_metrics_count_callbacks_by_result(receiver):
    await receiver.post(b"not json")
    await receiver.http.post("/xprizo/callback/wrong", content=b"{}")

    metrics = (await receiver.http.get("/metrics")).text

    assert 'deposits_webhook_callbacks_total{result="invalid"}' in metrics
    assert 'deposits_webhook_callbacks_total{result="wrong_secret"}' in metrics
    assert SECRET not in metrics


async def test_the_receiver_serves_no_openapi_document_to_the_internet(receiver):
    assert (await receiver.http.get("/openapi.json")).status_code == 404
    assert (await receiver.http.get("/docs")).status_code == 404
