"""The optional payload codec: AES-GCM at rest in Temporal, and the UI's codec endpoint.

Deposits run on the dev server with the real simulator, receiver, ledger and worker,
once with the codec on and once off; their histories are read back raw from the server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from deposits.models import Outcome
from deposits.settings import Settings
from tests.harness import running_harness
from tests.servers import serve_in_loop
from worker.codec import (
    ENCODING,
    CodecKeyError,
    EncryptionCodec,
    PayloadDecryptionError,
    new_key,
    parse_key,
)
from worker.codec_server import create_app, mask_phones
from worker.temporal import data_converter
from workflows import DepositWorkflow, ReconcileWorkflow

FULL_PHONE = "254712345678"
UI_ORIGIN = "http://127.0.0.1:8233"
HISTORIES = Path(__file__).parent / "histories"


def plain_payload(value: object) -> Payload:
    return Payload(
        metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode()
    )


def codec_client(client: Client, key: str | None) -> Client:
    """Another client on the same server: encrypting with ``key``, or plain."""
    settings = Settings(payload_codec_key=SecretStr(key) if key else None)
    return Client(**{**client.config(), "data_converter": data_converter(settings)})


def as_proto(history: WorkflowHistory) -> History:
    return History(events=history.events)


def payloads_in(message: Message, path: str = "") -> list[tuple[str, Payload]]:
    """Every Payload inside a protobuf message, with the field path leading to it."""
    if isinstance(message, Payload):
        return [(path, message)]
    found = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        where = f"{path}.{field.name}"
        if field.message_type.GetOptions().map_entry:
            items = [
                (f"{where}[{k}]", v) for k, v in value.items() if isinstance(v, Message)
            ]
        elif isinstance(value, Message):
            items = [(where, value)]
        else:
            items = [(where, item) for item in value]
        for item_path, item in items:
            found += payloads_in(item, item_path)
    return found


# -- the codec itself -----------------------------------------------------------------


async def test_codec_round_trips_payloads_and_passes_plain_ones_through():
    codec = EncryptionCodec(parse_key(new_key()))
    original = plain_payload({"phone": FULL_PHONE, "amount": "150"})

    [sealed] = await codec.encode([original])
    [opened, untouched] = await codec.decode([sealed, original])

    assert sealed.metadata["encoding"] == ENCODING
    assert FULL_PHONE.encode() not in sealed.SerializeToString()
    assert opened == original
    assert untouched == original


async def test_k7_codec_refuses_tampered_ciphertext_and_another_keys_payload():
    codec = EncryptionCodec(parse_key(new_key()))
    other = EncryptionCodec(parse_key(new_key()))
    [sealed] = await codec.encode([plain_payload("KES 150")])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])

    with pytest.raises(PayloadDecryptionError, match="integrity"):
        await codec.decode([tampered])
    with pytest.raises(PayloadDecryptionError, match="encrypted with key"):
        await other.decode([sealed])


@pytest.mark.parametrize(
    "key",
    ["not base64!", base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 33)],
)
def test_k10_codec_key_must_be_base64_of_32_bytes(key):
    if isinstance(key, bytes):
        key = key.decode()
    with pytest.raises(CodecKeyError, match="DEPOSITS_PAYLOAD_CODEC_KEY"):
        parse_key(key)


def test_k10_data_converter_is_plain_without_a_key_and_encrypts_with_one():
    assert data_converter(Settings()) is pydantic_data_converter
    empty = Settings(payload_codec_key=SecretStr(""))
    assert data_converter(empty) is pydantic_data_converter
    keyed = data_converter(Settings(payload_codec_key=SecretStr(new_key())))
    assert isinstance(keyed.payload_codec, EncryptionCodec)
    assert (
        keyed.payload_converter_class is pydantic_data_converter.payload_converter_class
    )


# -- deposits end to end --------------------------------------------------------------


async def test_deposit_with_the_codec_on_completes_with_only_ciphertext_at_rest(
    dev_env, tmp_path
):
    key = new_key()
    temporal = codec_client(dev_env.client, key)
    async with running_harness(
        temporal, tmp_path, payload_codec_key=SecretStr(key)
    ) as stack:
        handle = await stack.start("Pass", amount="150")
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.outcome == Outcome.APPROVED
    assert stack.ledger.outcome(result.reference).outcome == "approved"
    # Search attributes are not payloads a codec sees; a local activity's marker
    # "data" is the SDK's own bookkeeping (sequence, attempt, activity type, times).
    payloads = [
        (path, p)
        for path, p in payloads_in(as_proto(history))
        if "search_attributes" not in path and "details[data]" not in path
    ]
    plain = [path for path, p in payloads if p.metadata.get("encoding") != ENCODING]
    assert len(payloads) > 10 and not plain, plain
    raw = as_proto(history).SerializeToString()
    assert FULL_PHONE.encode() not in raw
    assert b"2547******78" not in raw  # even the masked summary is encrypted
    # A plain client cannot read it; the history replays with the key.
    with pytest.raises(Exception):  # noqa: B017 (the SDK's decode error has no type)
        await codec_client(dev_env.client, None).get_workflow_handle(handle.id).result()
    await Replayer(
        workflows=[DepositWorkflow, ReconcileWorkflow],
        data_converter=temporal.data_converter,
    ).replay_workflow(history)


async def test_deposit_with_the_codec_off_keeps_plain_payloads(dev_env, tmp_path):
    async with running_harness(codec_client(dev_env.client, None), tmp_path) as stack:
        handle = await stack.start("Pass", amount="150")
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.outcome == Outcome.APPROVED
    kinds = {p.metadata.get("encoding") for _, p in payloads_in(as_proto(history))}
    assert ENCODING not in kinds
    assert b"json/plain" in kinds
    # Without the codec the full phone sits in the workflow input at rest.
    assert FULL_PHONE.encode() in as_proto(history).SerializeToString()


async def test_k9_recorded_plain_histories_still_replay_with_the_codec_on():
    converter = data_converter(Settings(payload_codec_key=SecretStr(new_key())))
    replayer = Replayer(
        workflows=[DepositWorkflow, ReconcileWorkflow], data_converter=converter
    )
    files = sorted(HISTORIES.glob("*.json"))
    assert files
    for file in files:
        history = WorkflowHistory.from_json(file.stem, file.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
        assert result.replay_failure is None


# -- the codec endpoint ---------------------------------------------------------------


def as_body(payloads: list[Payload]) -> dict:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_body(body: dict) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def test_codec_endpoint_decodes_history_payloads_for_the_ui_with_phones_masked(
    dev_env, tmp_path
):
    key = new_key()
    temporal = codec_client(dev_env.client, key)
    async with running_harness(
        temporal, tmp_path, payload_codec_key=SecretStr(key)
    ) as stack:
        handle = await stack.start("Pass", amount="150")
        await handle.result()
        history = await handle.fetch_history()
    first = history.events[0]
    started = first.workflow_execution_started_event_attributes
    sealed = [*started.input.payloads, first.user_metadata.summary]
    app = create_app(EncryptionCodec(parse_key(key)), [UI_ORIGIN])

    async with serve_in_loop(app) as url, httpx.AsyncClient(base_url=url) as http:
        decoded = await http.post(
            "/decode",
            json=as_body(sealed),
            headers={"Origin": UI_ORIGIN, "X-Namespace": "default"},
        )
        preflight = await http.options(
            "/decode",
            headers={
                "Origin": UI_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        foreign = await http.options(
            "/decode",
            headers={
                "Origin": "http://127.0.0.1:9999",
                "Access-Control-Request-Method": "POST",
            },
        )

    assert decoded.status_code == 200
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    request, summary = [json.loads(p.data) for p in from_body(decoded.json())]
    assert request["reference"] == handle.id.removeprefix("deposit-")
    assert request["amount"] == "150"
    assert request["phone"] == "2547******78"
    assert summary.startswith("KES 150 from 2547******78")
    assert FULL_PHONE not in decoded.text
    assert preflight.status_code == 200
    assert "x-namespace" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers


async def test_codec_endpoint_encodes_for_the_cli_and_refuses_what_it_cannot_read():
    codec = EncryptionCodec(parse_key(new_key()))
    stranger = EncryptionCodec(parse_key(new_key()))
    [foreign] = await stranger.encode([plain_payload("x")])
    app = create_app(codec, [UI_ORIGIN])

    async with serve_in_loop(app) as url, httpx.AsyncClient(base_url=url) as http:
        encoded = await http.post(
            "/default/encode", json=as_body([plain_payload({"a": 1})])
        )
        [sealed] = from_body(encoded.json())
        not_json = await http.post("/decode", content=b"{not json")
        wrong_key = await http.post("/decode", json=as_body([foreign]))
        empty = await http.post("/decode", json={})
        get = await http.get("/decode")

    assert encoded.status_code == 200 and sealed.metadata["encoding"] == ENCODING
    assert (await codec.decode([sealed]))[0] == plain_payload({"a": 1})
    assert not_json.status_code == 400
    assert wrong_key.status_code == 400 and "encrypted with key" in wrong_key.text
    assert empty.status_code == 200 and empty.json() == {"payloads": []}
    assert get.status_code == 405


def test_k6_masking_hides_phones_in_fields_and_free_text_but_not_other_digits():
    shown = mask_phones(
        {
            "phone": FULL_PHONE,
            "description": "call 0712345678 or +254 not-a-number",
            "reference": "demo-20261204075126-approve",
            "transaction_id": 254712345678,
            "nested": [{"note": "from 254112345678."}],
        }
    )

    assert shown["phone"] == "2547******78"
    assert shown["description"] == "call 07******78 or +254 not-a-number"
    assert shown["reference"] == "demo-20261204075126-approve"
    assert shown["transaction_id"] == 254712345678
    assert shown["nested"] == [{"note": "from 2541******78."}]
