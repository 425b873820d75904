"""Deterministic workflow code only; it runs inside Temporal's sandbox."""

from workflows.deposit import DepositWorkflow

__all__ = ["DepositWorkflow"]
