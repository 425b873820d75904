"""The product's metrics: their names, and the replay-safe recorders the workflow calls.

Deposit metrics are recorded from workflow code through ``workflow.metric_meter()``,
which skips replays, so a worker restart never counts a deposit twice. They reach
Prometheus through the worker runtime's endpoint, beside the SDK's own metrics (see
``worker.telemetry``). This module imports nothing but temporalio and stdlib, so the
workflow sandbox can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

if TYPE_CHECKING:
    from deposits.models import DepositResult

DEPOSITS_STARTED = "deposits_started"
DEPOSITS_FINISHED = "deposits_finished"
DEPOSIT_TIME_TO_OUTCOME = "deposit_time_to_outcome_seconds"
XPRIZO_CALLS = "xprizo_calls"
XPRIZO_CALL_DURATION = "xprizo_call_duration_seconds"

# Histogram buckets in seconds: deposits take seconds to an hour, Xprizo calls far less.
BUCKETS = {
    DEPOSIT_TIME_TO_OUTCOME: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    XPRIZO_CALL_DURATION: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
}


def record_deposit_started() -> None:
    """Count a deposit that started; call once from the workflow's run."""
    workflow.metric_meter().create_counter(DEPOSITS_STARTED, "Deposits started").add(1)


def record_outcome_metrics(result: DepositResult) -> None:
    """Count the outcome and what decided it, and time it; call once per outcome.

    Labels: ``outcome`` (approved, cancelled, rejected, needs_review) and
    ``decided_by`` (callback, poll, deadline, create, recheck, operator).
    """
    meter = workflow.metric_meter()
    labels = {"outcome": result.outcome.value, "decided_by": result.decided_by.value}
    meter.create_counter(
        DEPOSITS_FINISHED, "Deposits finished, by outcome and what decided it"
    ).add(1, labels)
    seconds = (result.finished_at - result.started_at).total_seconds()
    meter.create_histogram_float(
        DEPOSIT_TIME_TO_OUTCOME, "Seconds from start to outcome", "s"
    ).record(max(seconds, 0.0), labels)
