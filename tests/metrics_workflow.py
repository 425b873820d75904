"""A tiny workflow that records the deposit metrics, to test them replay by replay."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from deposits.metrics import record_deposit_started, record_outcome_metrics
    from deposits.models import DepositResult


@workflow.defn
class MetricsProbeWorkflow:
    """Records a start, waits on timers (replays with no cache), records the outcome."""

    @workflow.run
    async def run(self, result: DepositResult) -> None:
        record_deposit_started()
        await workflow.sleep(timedelta(milliseconds=50))
        await workflow.sleep(timedelta(milliseconds=50))
        record_outcome_metrics(result)
