"""The ``deposits`` command as a process, against the dev server and the harness."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import pytest

from tests.harness import running_harness


@pytest.fixture(scope="module")
async def harness(dev_env, tmp_path_factory):
    async with running_harness(
        dev_env.client, tmp_path_factory.mktemp("cli")
    ) as running:
        yield running


async def cli(harness, *args: str, **env: str) -> tuple[int, str, str]:
    """Run ``deposits <args>`` with the harness's settings; (exit code, out, err)."""
    settings = harness.settings
    environment = {
        **os.environ,
        "DEPOSITS_TEMPORAL_ADDRESS": harness.temporal.service_client.config.target_host,
        "DEPOSITS_TASK_QUEUE": settings.task_queue,
        "DEPOSITS_XPRIZO_BASE_URL": settings.xprizo_base_url,
        "DEPOSITS_XPRIZO_API_KEY": settings.xprizo_api_key.get_secret_value(),
        "DEPOSITS_XPRIZO_ACCOUNT_ID": str(settings.xprizo_account_id),
        "DEPOSITS_WEBHOOK_PUBLIC_URL": settings.webhook_public_url,
        "DEPOSITS_WEBHOOK_SECRET": settings.webhook_secret.get_secret_value(),
        "DEPOSITS_LEDGER_URL": settings.ledger_url,
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deposits.cli",
        "--log-level",
        "WARNING",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


def reference() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


async def test_start_is_idempotent_and_a_conflict_exits_2(harness):
    ref = reference()
    args = ["start", "--reference", ref, "--amount", "100", "--phone", "0712345678"]

    first = await cli(harness, *args, "--description", "Pass")
    again = await cli(harness, *args)
    conflict = await cli(harness, *args[:-1], "0712345679")

    assert first[0] == 0 and json.loads(first[1])["created"] is True
    assert again[0] == 0 and json.loads(again[1])["created"] is False
    assert conflict[0] == 2 and "already used" in conflict[2]
    assert "0712345679" not in conflict[2]


async def test_start_with_invalid_fields_names_each_and_exits_2_k6(harness):
    code, _, err = await cli(
        harness, "start", "--reference", reference(), "--amount", "1.5", "--phone", "12"
    )

    assert code == 2
    assert "amount:" in err and "phone:" in err


async def test_watch_follows_a_deposit_to_its_outcome_and_status_shows_it(harness):
    ref = reference()
    await harness.start("Pass", reference=ref)

    watched = await cli(harness, "watch", ref, "--interval", "0.2", "--timeout", "30")
    status = await cli(harness, "status", ref)

    assert watched[0] == 0, watched[2]
    assert "approved" in watched[1]
    assert json.loads(status[1])["outcome"] == "approved"


async def test_watch_exits_3_when_the_deposit_is_not_approved(harness):
    ref = reference()
    await harness.start("Cancel", reference=ref)

    code, out, _ = await cli(harness, "watch", ref, "--interval", "0.2")

    assert code == 3
    assert "cancelled" in out


async def test_status_of_an_unknown_reference_exits_1(harness):
    code, _, err = await cli(harness, "status", reference())

    assert code == 1
    assert "no deposit with reference" in err


async def test_list_shows_deposits_by_status(harness):
    ref = reference()
    handle = await harness.start("Pass", reference=ref)
    await handle.result()

    for _ in range(50):  # visibility is eventually consistent
        code, out, _ = await cli(harness, "list", "--status", "approved", "--json")
        if ref in out:
            break
        await asyncio.sleep(0.2)

    assert code == 0
    listed = {d["reference"]: d for d in json.loads(out)["deposits"]}
    assert listed[ref]["status"] == "approved"


async def test_register_webhook_registers_confirms_and_fires_the_test_call(harness):
    code, out, err = await cli(harness, "register-webhook")

    assert code == 0, err
    assert "confirmed" in out and "test call fired" in out
    assert harness.settings.webhook_secret.get_secret_value() not in out + err


async def test_register_webhook_refuses_a_plain_http_public_url_k10(harness):
    code, _, err = await cli(
        harness,
        "register-webhook",
        DEPOSITS_WEBHOOK_PUBLIC_URL="http://pay.example.com",
    )

    assert code == 2
    assert "must use https" in err


async def test_an_unreachable_temporal_exits_1_with_one_line(harness):
    from devstack.stack import free_port

    code, _, err = await cli(
        harness, "status", "x", DEPOSITS_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}"
    )

    assert code == 1
    assert err.startswith("error: cannot reach Temporal")
