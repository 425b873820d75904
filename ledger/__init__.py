"""The merchant's own record of deposits: outcomes, callbacks, reconciliation items and
operator actions."""

from ledger.store import Ledger, ResolutionRefusedError

__all__ = ["Ledger", "ResolutionRefusedError"]
