"""The messages a deposit is made of: inputs, callbacks, status checks, state, outcome.

Every model here crosses the Temporal data converter, so money is ``Decimal`` and every
timestamp is timezone-aware UTC; none of them may hold a secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# A status check's verdict is Xprizo's word translated once, at the edge.
from xprizo.status import Verdict  # noqa: F401 (re-exported for the workflow)


class Outcome(StrEnum):
    """How a deposit ended; exactly one is recorded per reference."""

    APPROVED = "approved"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NEEDS_REVIEW = "needs_review"


def outcomes_agree(fact: Outcome, recorded: Outcome) -> bool:
    """Whether a later fact confirms a recorded outcome; a refused create counts as
    cancelled, since no money moved either way."""
    return fact == recorded or (
        fact == Outcome.CANCELLED and recorded == Outcome.REJECTED
    )


class DepositStatus(StrEnum):
    """Where a deposit is now; the four last ones are its outcomes."""

    CREATING = "creating"
    PENDING = "pending"
    CHECKING = "checking"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NEEDS_REVIEW = "needs_review"


class DecidedBy(StrEnum):
    """What led to the outcome."""

    CALLBACK = "callback"
    POLL = "poll"
    DEADLINE = "deadline"
    CREATE = "create"
    RECHECK = "recheck"
    OPERATOR = "operator"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class PollStep(_Message):
    """Check every ``every`` until ``until`` has passed since the deposit's create."""

    until: timedelta
    every: timedelta


class DepositPolicy(_Message):
    """The waiting rules fixed at start, so a running deposit never changes its mind."""

    deadline: timedelta
    not_found_grace: timedelta
    poll_steps: list[PollStep]
    poll_every_after: timedelta
    # How long a needs_review deposit stays open for an operator's resolution.
    review_window: timedelta = timedelta(days=30)

    def next_check_after(self, since_create: timedelta) -> timedelta:
        """How long to wait before the next status check, given the deposit's age."""
        for step in self.poll_steps:
            if since_create < step.until:
                return step.every
        return self.poll_every_after


class DepositRequest(_Message):
    """What a service asks for; ``phone`` is already normalised (2547… / 2541…)."""

    reference: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    amount: Decimal
    currency: str = "KES"
    phone: str
    description: str | None = None
    policy: DepositPolicy


class CreateResult(_Message):
    """What creating the deposit at Xprizo gave."""

    transaction_id: int | None = None
    created: bool
    adopted_existing: bool = False
    reason: str | None = None
    created_at: AwareDatetime


class StatusCheck(_Message):
    """One status check at Xprizo, the only source of truth for an outcome."""

    verdict: Verdict
    status_word: str
    transaction_id: int | None = None
    amount: Decimal | None = None
    currency: str | None = None
    reference: str | None = None
    checked_at: AwareDatetime


class StatusCheckRequest(_Message):
    """Ask Xprizo for a deposit's status; ``created_at`` anchors NotFound's grace."""

    reference: str
    created_at: AwareDatetime
    not_found_grace: timedelta


class PollRequest(_Message):
    """Keep checking a deposit's status on the policy's schedule until it is decided."""

    reference: str
    created_at: AwareDatetime
    policy: DepositPolicy
    stop_at: AwareDatetime
    # False right after another status check, so the poller waits an interval first.
    check_at_once: bool = True


class CallbackSignal(_Message):
    """A callback from Xprizo as the webhook receiver passed it on: a trigger only."""

    status_type: int
    status: str | None = None
    transaction_id: int | None = None
    reference: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    received_at: AwareDatetime


class Mismatch(_Message):
    """A value Xprizo reported that disagrees with the request; both are kept."""

    source: str
    field: str
    requested: str
    reported: str

    @classmethod
    def of(cls, source: str, field: str, requested: object, reported: object):
        return cls(
            source=source, field=field, requested=str(requested), reported=str(reported)
        )


class Resolution(_Message):
    """An operator's decision on a needs_review deposit, kept as an audit trail."""

    outcome: Literal[Outcome.APPROVED, Outcome.CANCELLED]
    reason: str = Field(min_length=3, max_length=500)
    operator: str = Field(min_length=1, max_length=100)


class ResolutionRecord(_Message):
    """Ask the ledger to settle a needs_review outcome once."""

    reference: str
    outcome: Outcome
    reason: str
    actor: str


class ReconcileRequest(_Message):
    """Verify a closed deposit again after a callback arrived for it."""

    reference: str
    trigger: str


class ReconcileResult(_Message):
    """What re-verifying a closed deposit found."""

    reference: str
    recorded_outcome: Outcome | None
    xprizo_status: str | None = None
    conflict: bool = False


class DepositResult(_Message):
    """The final outcome of a deposit, as recorded in the ledger and returned."""

    reference: str
    outcome: Outcome
    decided_by: DecidedBy
    reason: str | None = None
    transaction_id: int | None = None
    amount: Decimal
    currency: str
    phone_masked: str
    xprizo_status: str | None = None
    mismatches: list[Mismatch] = Field(default_factory=list)
    started_at: AwareDatetime
    finished_at: AwareDatetime


class RecordResult(_Message):
    """What the ledger did with an outcome."""

    written: bool
    recorded_outcome: Outcome
    conflict: bool = False


class DepositState(BaseModel):
    """The workflow's whole state, returned as is by the ``state`` query."""

    reference: str
    status: DepositStatus = DepositStatus.CREATING
    amount: Decimal
    currency: str
    phone_masked: str
    transaction_id: int | None = None
    started_at: datetime
    created_at: datetime | None = None
    deadline_at: datetime | None = None
    callbacks_received: int = 0
    status_checks: int = 0
    last_xprizo_status: str | None = None
    outcome: Outcome | None = None
    decided_by: DecidedBy | None = None
    reason: str | None = None
    mismatches: list[Mismatch] = Field(default_factory=list)
    resolved_by: str | None = None
    finished_at: datetime | None = None
