"""Every side effect of a deposit: Xprizo calls and ledger writes."""

from activities.deposit_activities import DepositActivities

__all__ = ["DepositActivities"]
