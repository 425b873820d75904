"""The merchant's own record of deposits: outcomes, callbacks and reconciliation items."""

from ledger.store import Ledger

__all__ = ["Ledger"]
