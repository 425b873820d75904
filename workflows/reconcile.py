"""Re-verifying a closed deposit when a callback arrives for it after its outcome."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.deposit_activities import DepositActivities
    from deposits.models import ReconcileRequest, ReconcileResult


@workflow.defn
class ReconcileWorkflow:
    """One status check for a closed deposit; a conflict is kept, never applied."""

    @workflow.run
    async def run(self, request: ReconcileRequest) -> ReconcileResult:
        return await workflow.execute_activity_method(
            DepositActivities.reconcile_closed_deposit,
            request,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            summary="check a closed deposit's status again after a late callback",
        )
