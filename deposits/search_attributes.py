"""The custom search attributes operators filter deposits by in the Temporal UI.

They must be registered on every Temporal server before a workflow upserts them; an
unregistered one fails every workflow task. None of them holds personal data.
"""

from temporalio.common import SearchAttributeKey

DEPOSIT_STATUS = SearchAttributeKey.for_keyword("DepositStatus")
DEPOSIT_REFERENCE = SearchAttributeKey.for_keyword("DepositReference")
# Minor units (cents) as an integer: exact, filterable, never a float.
DEPOSIT_AMOUNT_CENTS = SearchAttributeKey.for_int("DepositAmountCents")

ALL = (DEPOSIT_STATUS, DEPOSIT_REFERENCE, DEPOSIT_AMOUNT_CENTS)


def amount_in_cents(amount) -> int:
    """The amount in minor units; amounts carry at most two decimal places."""
    return int(amount * 100)
