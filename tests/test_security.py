"""Forged callbacks, hostile bodies, leaks: nothing approves, nothing crashes (K6, K7).

End to end on the dev server with the in-process stack (real simulator, receiver,
ledger and worker over HTTP on 127.0.0.1), plus property tests of every parser that
meets outside bytes. Every log record of the process is scanned for the phone number
and the secrets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deposits.models import Outcome
from deposits.validation import normalize_phone, validate_amount
from tests.harness import API_KEY, PHONE, running_harness
from webhook.app import parse_callback
from xprizo.models import Callback, CreatedDeposit, StatusReport, loads_json
from xprizo.status import Verdict, map_status

pytestmark = pytest.mark.e2e

PARSER_EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def accepted(reference: str, transaction_id: int, amount: object = 100) -> bytes:
    return json.dumps(
        {
            "statusType": 2,
            "status": "Accepted",
            "transaction": {
                "id": transaction_id,
                "reference": reference,
                "amount": amount,
                "currencyCode": "KES",
            },
        }
    ).encode()


def assert_no_leak(caplog, secret: str) -> None:
    """No record holds the phone or a secret, but this test's own requests' lines."""
    # httpx logs every URL it is given, and this test is the one posting to the
    # secret callback URL; the product's own HTTP clients are still scanned.
    text = "\n".join(
        caplog.handler.format(record)
        for record in caplog.records
        if "/xprizo/callback/" not in record.getMessage()
    )
    assert PHONE[1:] not in text, "a log line holds the phone number"
    assert secret not in text, "a log line holds the webhook secret"
    assert API_KEY not in text, "a log line holds the API key"


async def outcome_of(harness, reference: str, timeout: float = 40):
    for _ in range(int(timeout / 0.2)):
        row = await asyncio.to_thread(harness.ledger.outcome, reference)
        if row is not None:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"{reference} had no outcome within {timeout}s")


async def test_forged_callbacks_lead_to_zero_approvals_k7(dev_env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_harness(
        dev_env.client, tmp_path, poll_schedule=[(60, 1)], deadline_seconds=6
    ) as harness:
        secret = harness.settings.webhook_secret.get_secret_value()
        base = harness.settings.webhook_public_url
        references = [f"forged-{n}-{tmp_path.name[-6:]}" for n in range(4)]
        for reference in references[:3]:
            harness.script(reference, "pending")
        # The simulator itself forges an approval for a deposit it keeps pending.
        harness.script(references[3], "pending", forge_approval_callback_after=0.3)
        for reference in references:
            await harness.start("forged", reference=reference)
        await asyncio.sleep(1)  # the creates are done; Xprizo says Pending
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            # Right shape, wrong secret (and a secret one character short).
            for token in ("x" * 40, secret[:-1], secret.upper()):
                answer = await http.post(
                    f"/xprizo/callback/{token}", content=accepted(references[0], 1)
                )
                assert answer.status_code == 404
            # Right secret, an approval Xprizo does not confirm, sent many times.
            for copy in range(3):
                answer = await http.post(
                    f"/xprizo/callback/{secret}",
                    content=accepted(references[1], 7000 + copy),
                )
                assert answer.status_code == 200
            # Right secret, the deposit's own transaction id, a bigger amount.
            answer = await http.post(
                f"/xprizo/callback/{secret}",
                content=accepted(references[2], 7100, amount=1_000_000),
            )
            assert answer.status_code == 200

        rows = [await outcome_of(harness, r) for r in references]
        assert [row.outcome for row in rows] == [Outcome.NEEDS_REVIEW] * 4
        assert not any(r.outcome == Outcome.APPROVED for r in harness.ledger.deposits())
        signalled = [c for c in harness.ledger.callbacks() if c.result == "signalled"]
        assert {c.reference for c in signalled} >= set(references[1:])
    assert_no_leak(caplog, secret)


async def lying_length(base_url: str, path: str, declared: int) -> int:
    """POST a body shorter than its declared length over a raw socket; the status."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
        "Content-Type: application/json\r\n\r\n{}".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    return int(status_line.split()[1])


HOSTILE_BODIES = {
    "empty": b"",
    "not JSON": b"statusType=2&status=Accepted",
    "truncated JSON": accepted("r-1", 1)[:-9],
    "binary": bytes(range(256)),
    "invalid UTF-8": b'{"statusType": 2, "status": "\xff\xfe"}',
    "JSON null": b"null",
    "JSON array": b"[1, 2, 3]",
    "JSON string": b'"Accepted"',
    "statusType a string": b'{"statusType": "two", "status": "Accepted"}',
    "statusType a float": b'{"statusType": 2.5, "status": "Accepted"}',
    "statusType huge": b'{"statusType": 99999999999999999999999, "status": "x"}',
    "statusType negative": b'{"statusType": -1, "status": "Accepted"}',
    "transaction a list": b'{"statusType": 2, "status": "A", "transaction": [1]}',
    "amount a word": (
        b'{"statusType": 2, "status": "Accepted", "transaction": '
        b'{"id": 1, "reference": "r-1", "amount": "lots", "currencyCode": "KES"}}'
    ),
    "deeply nested": b'{"statusType": 2, "status": "A", "transaction": '
    + b'{"a": ' * 5000
    + b"1"
    + b"}" * 5001,
    "nested past the parser": b"[" * 100_000 + b"]" * 100_000,
}


async def test_hostile_bodies_get_4xx_and_crash_nothing_k6(dev_env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_harness(dev_env.client, tmp_path) as harness:
        secret = harness.settings.webhook_secret.get_secret_value()
        limit = harness.settings.webhook_max_body_bytes
        bodies = {
            **HOSTILE_BODIES,
            "oversized": b'{"statusType": 2, "status": "' + b"A" * limit + b'"}',
        }
        async with httpx.AsyncClient(
            base_url=harness.settings.webhook_public_url, trust_env=False
        ) as http:
            path = f"/xprizo/callback/{secret}"
            answers = {}
            for name, body in bodies.items():
                for content_type in ("application/json", "text/plain"):
                    answer = await http.post(
                        path, content=body, headers={"content-type": content_type}
                    )
                    answers[f"{name} ({content_type})"] = answer.status_code
            # A Content-Length past the cap with a short body, then a hang-up.
            answers["declared oversized"] = await lying_length(
                harness.settings.webhook_public_url, path, limit * 10
            )

            async def chunks():
                for _ in range(limit // 1024 + 2):
                    yield b" " * 1024

            answers["chunked oversized"] = (
                await http.post(path, content=chunks())
            ).status_code
            wrong = {k: v for k, v in answers.items() if not 400 <= v < 500}
            assert not wrong, wrong

            assert (await http.get("/healthz")).status_code == 200
            handle = await harness.start("Pass")
            result = await handle.result()
            assert result.outcome == Outcome.APPROVED
    assert_no_leak(caplog, secret)


# -- parsers, fuzzed: only ValueError (or a parsed value) may come out ----------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
callback_like = st.fixed_dictionaries(
    {},
    optional={
        "statusType": json_values,
        "status": json_values,
        "transaction": st.fixed_dictionaries(
            {},
            optional={
                "id": json_values,
                "reference": json_values,
                "amount": json_values,
                "currencyCode": json_values,
            },
        )
        | json_values,
    },
)


@PARSER_EXAMPLES
@given(
    raw=st.binary(max_size=300) | callback_like.map(lambda v: json.dumps(v).encode())
)
def test_the_callback_parser_raises_only_value_error_on_any_bytes_k6(raw):
    try:
        callback = parse_callback(raw)
    except ValueError:
        return
    assert isinstance(callback, Callback)
    assert 0 <= callback.status_type < 2**31


@PARSER_EXAMPLES
@given(data=json_values | callback_like)
def test_xprizo_answer_parsers_raise_only_value_error_k6(data):
    for parse in (CreatedDeposit.from_response, StatusReport.model_validate):
        try:
            parse(data)
        except ValueError:
            pass


@PARSER_EXAMPLES
@given(raw=st.binary(max_size=200))
def test_loads_json_raises_only_value_error_k6(raw):
    try:
        loads_json(raw)
    except (ValueError, RecursionError):
        pass


@PARSER_EXAMPLES
@given(word=st.text(max_size=40), seconds=st.integers(0, 10_000))
def test_any_status_word_maps_to_a_verdict_never_an_error_k5(word, seconds):
    verdict = map_status(
        word,
        since_create=timedelta(seconds=seconds),
        not_found_grace=timedelta(seconds=120),
    )
    assert verdict in set(Verdict)


@PARSER_EXAMPLES
@given(raw=st.text(max_size=30) | st.integers().map(str))
def test_phone_and_amount_validation_raise_only_value_error_k6(raw):
    try:
        normalize_phone(raw)
    except ValueError:
        pass
    try:
        amount = validate_amount(raw, minimum=Decimal(1), maximum=Decimal(250000))
    except ValueError:
        return
    assert Decimal(1) <= amount <= Decimal(250000)
