"""A whole demo-like run on the stack's processes, JSON logs, metrics and tracing on:
every log line and every exported span is free of the demo's phone numbers and the
secrets, and the worker's Prometheus endpoint serves SDK, deposit and Xprizo metrics."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest

from deposits import metrics
from deposits.demo import DEMO_DEPOSITS, DEMO_SETTINGS, _run_deposits
from devstack import LocalStack, StackPorts, free_port
from tests.observability import OtlpReceiver, scrape, value
from worker.telemetry import flush_traces

pytestmark = pytest.mark.e2e

API_KEY = "obs-api-key-" + uuid.uuid4().hex
WEBHOOK_SECRET = "obs-webhook-secret-" + uuid.uuid4().hex


def phone_forms(phone: str) -> set[str]:
    """A demo phone number in every form it could be written: 07…, 2547…, +2547…."""
    digits = re.sub(r"\D", "", phone)
    subscriber = digits[-9:]
    return {
        phone,
        digits,
        subscriber,
        "0" + subscriber,
        "254" + subscriber,
        "+254" + subscriber,
    }


def leaks(text: str) -> list[str]:
    """The demo's phone numbers and the secrets found in a text, in any format."""
    # Digit groups split by a space or dash are joined, so "0722 000 111" is caught.
    joined = re.sub(r"(?<=\d)[ -](?=\d)", "", text)
    found = [secret for secret in (API_KEY, WEBHOOK_SECRET) if secret in text]
    for deposit in DEMO_DEPOSITS:
        found += [form for form in phone_forms(deposit.phone) if form in joined]
    return found


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo's deposits on a stack of processes; the stack is stopped afterwards."""
    data_dir = tmp_path_factory.mktemp("observed-demo")
    metrics_address = f"127.0.0.1:{free_port()}"
    with OtlpReceiver() as otlp:
        stack = LocalStack(
            data_dir=data_dir,
            ports=StackPorts.random(),
            overrides={
                **DEMO_SETTINGS,
                "DEPOSITS_LOG_FORMAT": "json",
                "DEPOSITS_METRICS_ADDRESS": metrics_address,
                "DEPOSITS_TRACING_ENABLED": "true",
                "DEPOSITS_TRACING_OTLP_ENDPOINT": otlp.endpoint,
                "DEPOSITS_XPRIZO_API_KEY": API_KEY,
                "DEPOSITS_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
        )
        with stack:
            runs = asyncio.run(_run_deposits(stack))
            samples = scrape(metrics_address)
            # Kept beside the logs for a person reading a failed run.
            (data_dir / "metrics.txt").write_text(
                httpx.get(f"http://{metrics_address}/metrics").text
            )
        # This process started the deposits through a traced client: send its spans
        # while the receiver still listens.
        flush_traces(shutdown=True)
        # The stack has stopped: the worker drained and flushed its last spans.
        yield {"stack": stack, "runs": runs, "samples": samples, "spans": otlp.spans()}


def test_the_demo_deposits_reach_their_expected_outcomes(demo_run):
    assert [run.ok for run in demo_run["runs"]] == [True] * len(DEMO_DEPOSITS)


def test_no_log_line_of_any_process_holds_a_phone_number_or_a_secret(demo_run):
    logs = sorted(demo_run["stack"].data_dir.glob("logs/*.log"))
    assert {p.stem for p in logs} >= {"temporal", "simulator", "webhook", "worker"}
    for path in logs:
        if path.stem == "simulator":
            continue  # checked on its own below
        assert leaks(path.read_text(errors="replace")) == [], path.name


def test_the_simulator_log_holds_no_phone_number_or_secret_either(demo_run):
    text = demo_run["stack"].log_path("simulator").read_text(errors="replace")
    assert leaks(text) == []


def test_no_exported_span_holds_a_phone_number_or_a_secret(demo_run):
    spans = demo_run["spans"]
    assert spans, "no span reached the OTLP receiver"
    leaking = {span.name: leaks(str(span)) for span in spans if leaks(str(span))}
    assert leaking == {}


def test_traces_follow_each_deposit_through_workflow_and_activities(demo_run):
    names = {span.name for span in demo_run["spans"]}
    assert "RunWorkflow:DepositWorkflow" in names
    assert any(name.startswith("RunActivity:") for name in names)
    assert any(name.startswith("StartWorkflow:DepositWorkflow") for name in names)


def test_worker_logs_are_json_with_the_reference_on_every_deposit_line(demo_run):
    lines = demo_run["stack"].log_path("worker").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    references = {run.result.reference for run in demo_run["runs"]}
    for reference in references:
        mine = [e for e in entries if e.get("reference") == reference]
        assert mine, f"no worker log line for {reference}"
    deposit_lines = [e for e in entries if e["message"].startswith("deposit ")]
    assert deposit_lines and all("reference" in e for e in deposit_lines)


def test_the_worker_serves_sdk_and_xprizo_call_metrics(demo_run):
    samples = demo_run["samples"]
    assert value(samples, "temporal_workflow_task_execution_latency_count") > 0
    calls = metrics.XPRIZO_CALLS
    assert value(samples, calls, endpoint="Transaction/MPesaDeposit", status="200") == 4
    assert value(samples, calls, endpoint="Transaction/MPesaDeposit", status="400") == 1
    assert value(samples, calls, endpoint="Transaction/StatusByReference/{id}") > 0


def test_the_worker_serves_each_deposits_start_outcome_and_time(demo_run):
    samples = demo_run["samples"]
    assert value(samples, metrics.DEPOSITS_STARTED) == len(DEMO_DEPOSITS)
    for deposit in DEMO_DEPOSITS:
        labels = {
            "outcome": deposit.expected_outcome.value,
            "decided_by": deposit.expected_decided_by.value,
        }
        assert value(samples, metrics.DEPOSITS_FINISHED, **labels) >= 1, labels
    timed = value(samples, metrics.DEPOSIT_TIME_TO_OUTCOME + "_count")
    assert timed == len(DEMO_DEPOSITS)
