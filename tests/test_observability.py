"""Telemetry in the test process: log redaction and JSON, Xprizo call metrics on a real
Prometheus endpoint, and replay-safe deposit metrics from a real workflow."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from deposits import metrics
from deposits.logs import JsonFormatter, Redactor, TextFormatter, configure
from deposits.models import DecidedBy, DepositResult, Outcome
from deposits.settings import Settings
from devstack import free_port
from simulator.testing import RunningSimulator
from tests.metrics_workflow import MetricsProbeWorkflow
from tests.observability import scrape, value
from worker.main import xprizo_client
from worker.telemetry import endpoint_label, worker_runtime
from xprizo.errors import XprizoError

SECRET = "sk-" + uuid.uuid4().hex
PHONES = [
    "0712345678",
    "+254 722 000 111",
    "0110 555 123",
    "254733444555",
    "0799-888-777",
]


def record(msg: str, *args, **extra) -> logging.LogRecord:
    entry = logging.LogRecord(
        "deposits.test", logging.INFO, __file__, 1, msg, args, None
    )
    entry.__dict__.update(extra)
    return entry


# Logs


@pytest.mark.parametrize("phone", PHONES)
def test_a_phone_number_in_any_accepted_form_never_reaches_a_log_line(phone):
    line = TextFormatter(Redactor()).format(record("payer %s called", phone))
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert digits[-9:] not in "".join(ch for ch in line if ch.isdigit())
    assert "******" in line


def test_a_secret_is_blanked_in_messages_and_tracebacks_of_both_formats():
    redact = Redactor([SECRET])
    try:
        raise RuntimeError(f"bad key {SECRET}")
    except RuntimeError:
        import sys

        failing = record("deposit %s: called with %s", "ref-1", SECRET)
        failing.exc_info = sys.exc_info()
    for formatter in (TextFormatter(redact), JsonFormatter(redact)):
        assert SECRET not in formatter.format(failing)


def test_json_lines_carry_the_reference_from_workflow_ids_and_messages():
    formatter = JsonFormatter(Redactor())
    from_workflow = json.loads(
        formatter.format(
            record(
                "waiting",
                temporal_workflow={"workflow_id": "deposit-ord-7", "run_id": "r1"},
            )
        )
    )
    from_message = json.loads(formatter.format(record("deposit %s: created", "ord-8")))
    assert from_workflow["reference"] == "ord-7"
    assert from_workflow["workflow"] == {"workflow_id": "deposit-ord-7", "run_id": "r1"}
    assert from_message["reference"] == "ord-8"
    assert from_message["message"] == "deposit ord-8: created"
    assert datetime.fromisoformat(from_message["time"]).utcoffset() == timedelta(0)


def test_configure_twice_leaves_one_handler_in_the_chosen_format(monkeypatch):
    stream = io.StringIO()
    configure("INFO", log_format="json", secrets=[SECRET])
    configure("INFO", log_format="json", secrets=[SECRET])
    root = logging.getLogger()
    try:
        assert len(root.handlers) == 1
        root.handlers[0].setStream(stream)
        logging.getLogger("deposits.x").info("deposit %s: key %s", "r-9", SECRET)
        [line] = stream.getvalue().splitlines()
        assert json.loads(line)["message"] == "deposit r-9: key ***"
    finally:
        root.removeHandler(root.handlers[0])


# Xprizo call metrics


def test_endpoint_labels_fold_ids_and_drop_the_query():
    assert endpoint_label("/api/Transaction/StatusByReference/1001", "/api/") == (
        "Transaction/StatusByReference/{id}"
    )
    assert endpoint_label("/api/Transaction/MPesaDeposit", "/api/") == (
        "Transaction/MPesaDeposit"
    )


async def test_xprizo_calls_are_counted_by_endpoint_and_status_with_failures_too():
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(
        Settings(metrics_address=address, service_name="observability-test")
    )
    with RunningSimulator(api_key=SECRET, account_id=77, callback_delay=0.1) as sim:
        sim.script("obs-rejected", "reject")
        settings = Settings(
            xprizo_base_url=sim.api_url,
            xprizo_api_key=SecretStr(SECRET),
            xprizo_account_id=77,
        )
        async with xprizo_client(settings, runtime.metric_meter) as xprizo:
            await xprizo.create_mpesa_deposit(
                reference="obs-ok", amount=Decimal("10"), mobile_number="254712345678"
            )
            await xprizo.status_by_reference("obs-ok")
            with pytest.raises(XprizoError):
                await xprizo.create_mpesa_deposit(
                    reference="obs-rejected",
                    amount=Decimal("10"),
                    mobile_number="254712345678",
                )
    dead = settings.model_copy(
        update={"xprizo_base_url": f"http://127.0.0.1:{free_port()}/api"}
    )
    async with xprizo_client(dead, runtime.metric_meter) as xprizo:
        with pytest.raises(XprizoError):
            await xprizo.status_by_reference("obs-dead")

    samples = scrape(address)
    calls = metrics.XPRIZO_CALLS
    assert value(samples, calls, endpoint="Transaction/MPesaDeposit", status="200") == 1
    assert value(samples, calls, endpoint="Transaction/MPesaDeposit", status="400") == 1
    status_endpoint = "Transaction/StatusByReference/{id}"
    assert value(samples, calls, endpoint=status_endpoint, status="200") == 1
    assert value(samples, calls, endpoint=status_endpoint, status="error") == 1
    assert value(samples, metrics.XPRIZO_CALL_DURATION + "_count") == 4
    labels = [repr(labels) for name, labels, _ in samples if name == calls]
    assert not any("obs-" in text or "2547" in text for text in labels)


# Deposit metrics


async def test_deposit_metrics_count_each_deposit_once_even_when_every_task_replays(
    dev_env,
):
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(Settings(metrics_address=address))
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        runtime=runtime,
        data_converter=pydantic_data_converter,
    )
    started = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    results = [
        DepositResult(
            reference=f"m-{i}",
            outcome=outcome,
            decided_by=decided_by,
            amount=Decimal("100"),
            currency="KES",
            phone_masked="07******78",
            started_at=started,
            finished_at=started + timedelta(seconds=seconds),
        )
        for i, (outcome, decided_by, seconds) in enumerate(
            [
                (Outcome.APPROVED, DecidedBy.CALLBACK, 4),
                (Outcome.APPROVED, DecidedBy.POLL, 40),
                (Outcome.NEEDS_REVIEW, DecidedBy.DEADLINE, 3600),
            ]
        )
    ]
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    # No cache: every workflow task replays the history from the start.
    async with Worker(
        client,
        task_queue=queue,
        workflows=[MetricsProbeWorkflow],
        max_cached_workflows=0,
    ):
        for result in results:
            await client.execute_workflow(
                MetricsProbeWorkflow.run,
                result,
                id=f"metrics-{uuid.uuid4().hex}",
                task_queue=queue,
            )

    samples = scrape(address)
    assert value(samples, metrics.DEPOSITS_STARTED) == 3
    finished = metrics.DEPOSITS_FINISHED
    assert value(samples, finished, outcome="approved", decided_by="callback") == 1
    assert value(samples, finished, outcome="approved", decided_by="poll") == 1
    assert value(samples, finished, outcome="needs_review", decided_by="deadline") == 1
    seconds = metrics.DEPOSIT_TIME_TO_OUTCOME
    assert value(samples, seconds + "_count") == 3
    assert value(samples, seconds + "_sum") == 3644
    assert value(samples, seconds + "_bucket", outcome="approved", le="5") == 1
    # The SDK's own metrics come out of the same endpoint.
    assert value(samples, "temporal_workflow_completed") >= 3
