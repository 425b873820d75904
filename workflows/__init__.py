"""Deterministic workflow code only; it runs inside Temporal's sandbox."""

from workflows.deposit import DepositWorkflow
from workflows.reconcile import ReconcileWorkflow

__all__ = ["DepositWorkflow", "ReconcileWorkflow"]
