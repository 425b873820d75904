"""Asking for a closed deposit to be verified again, from the webhook path.

It never decides or changes an outcome: the reconcile workflow checks Xprizo's status
and, on a conflict, adds a reconciliation item to the ledger beside the recorded one.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from deposits.models import ReconcileRequest
from workflows import ReconcileWorkflow


async def request_reconciliation(
    temporal: Client, task_queue: str, reference: str, trigger: str
) -> None:
    """Start one re-verification of ``reference``; one runs at a time per reference."""
    await temporal.start_workflow(
        ReconcileWorkflow.run,
        ReconcileRequest(reference=reference, trigger=trigger),
        id=f"reconcile-{reference}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"re-verify closed deposit {reference} after {trigger}",
    )
