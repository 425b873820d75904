"""The deposit's activities: create at Xprizo, check the status, poll, record outcomes.

Retry classes: Xprizo's transient errors (5xx, 429, timeouts, lost connections) are
raised so Temporal retries them; a final refusal is an answer, returned, not raised;
a request that can never succeed raises the non-retryable ``InvalidDepositRequest``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from deposits.models import (
    CreateResult,
    DecidedBy,
    DepositRequest,
    DepositResult,
    Outcome,
    PollRequest,
    ReconcileRequest,
    ReconcileResult,
    RecordResult,
    ResolutionRecord,
    StatusCheck,
    StatusCheckRequest,
    Verdict,
    outcomes_agree,
)
from deposits.validation import InvalidAmountError, InvalidPhoneError, normalize_phone
from ledger import Ledger
from xprizo import XprizoClient, XprizoRejectedError, XprizoTransientError
from xprizo.status import map_status

# How often the poller tells Temporal it is alive while it sleeps; the SDK throttles
# the actual calls, so a small slice only makes cancellation arrive sooner.
HEARTBEAT_SLICE_SECONDS = 2.0
REJECTED_CREATE_WORDS = frozenset({"rejected", "reject"})
ZERO = timedelta(0)


class DepositActivities:
    """The activities, bound to one Xprizo client and one ledger."""

    def __init__(self, xprizo: XprizoClient, ledger: Ledger) -> None:
        self._xprizo = xprizo
        self._ledger = ledger

    @activity.defn
    async def create_deposit(self, request: DepositRequest) -> CreateResult:
        """Create the deposit at Xprizo; an earlier attempt's transaction is adopted."""
        try:
            phone = normalize_phone(request.phone)
        except (InvalidPhoneError, InvalidAmountError) as err:
            raise ApplicationError(
                str(err), type="InvalidDepositRequest", non_retryable=True
            ) from None
        try:
            created = await self._xprizo.create_mpesa_deposit(
                mobile_number=phone,
                amount=request.amount,
                reference=request.reference,
                description=request.description,
            )
        except XprizoRejectedError as err:
            activity.logger.info(
                "deposit %s: Xprizo refused the create (%s): %s",
                request.reference,
                err.status_code,
                err.reason,
            )
            return CreateResult(created=False, reason=err.reason, created_at=_now())
        except XprizoTransientError as err:
            activity.logger.warning(
                "deposit %s: create attempt %d failed transiently: %s",
                request.reference,
                activity.info().attempt,
                err,
            )
            raise
        if created.already_existed:
            activity.logger.info(
                "deposit %s: Xprizo already has this reference, adopting it",
                request.reference,
            )
            return CreateResult(created=True, adopted_existing=True, created_at=_now())
        if created.status.strip().lower() in REJECTED_CREATE_WORDS:
            activity.logger.info(
                "deposit %s: Xprizo rejected the create: %s",
                request.reference,
                created.message,
            )
            return CreateResult(
                created=False,
                transaction_id=created.transaction_id,
                reason=created.message or created.status,
                created_at=_now(),
            )
        activity.logger.info(
            "deposit %s: created at Xprizo as transaction %s (%s)",
            request.reference,
            created.transaction_id,
            created.status,
        )
        return CreateResult(
            created=True, transaction_id=created.transaction_id, created_at=_now()
        )

    @activity.defn
    async def check_status(self, request: StatusCheckRequest) -> StatusCheck:
        """Ask Xprizo for the deposit's status once."""
        return await self._status_check(
            request.reference, request.created_at, request.not_found_grace
        )

    @activity.defn
    async def poll_until_decided(self, request: PollRequest) -> StatusCheck:
        """Check the status on the policy's schedule until Xprizo decides or time is up.

        Returns a pending check when ``stop_at`` passes. Cancelled by the workflow when
        callback makes a check due sooner; a retry after a crash simply starts checking.
        """
        last: StatusCheck | None = None
        if not request.check_at_once:
            now = _now()
            wait = request.policy.next_check_after(now - request.created_at)
            await _sleep_heartbeating(min(wait, max(request.stop_at - now, ZERO)))
        while True:
            try:
                last = await self._status_check(
                    request.reference,
                    request.created_at,
                    request.policy.not_found_grace,
                )
                if last.verdict != Verdict.PENDING:
                    return last
            except XprizoTransientError as err:
                activity.logger.warning(
                    "deposit %s: status check failed transiently: %s",
                    request.reference,
                    err,
                )
            now = _now()
            if now >= request.stop_at:
                break
            wait = request.policy.next_check_after(now - request.created_at)
            await _sleep_heartbeating(min(wait, request.stop_at - now))
        return last or StatusCheck(
            verdict=Verdict.PENDING, status_word="Unknown", checked_at=_now()
        )

    @activity.defn
    async def record_outcome(self, result: DepositResult) -> RecordResult:
        """Write the outcome to the ledger, once per reference."""
        return await asyncio.to_thread(self._ledger.record_outcome, result)

    @activity.defn
    async def record_resolution(self, record: ResolutionRecord) -> None:
        """Settle a recorded needs_review outcome once, with its audit row."""
        try:
            await asyncio.to_thread(
                self._ledger.resolve_needs_review,
                record.reference,
                record.outcome,
                record.reason,
                record.actor,
            )
        except ValueError as err:
            raise ApplicationError(
                str(err), type="LedgerRefused", non_retryable=True
            ) from None

    @activity.defn
    async def reconcile_closed_deposit(
        self, request: ReconcileRequest
    ) -> ReconcileResult:
        """Check a closed deposit's status again; a conflict becomes a reconciliation.

        Never changes the recorded outcome: the ledger keeps the conflicting fact
        beside it for a person to settle.
        """
        row = await asyncio.to_thread(self._ledger.outcome, request.reference)
        if row is None:
            activity.logger.info(
                "deposit %s: %s for a reference the ledger does not know",
                request.reference,
                request.trigger,
            )
            return ReconcileResult(reference=request.reference, recorded_outcome=None)
        recorded = Outcome(row.outcome)
        # A closed deposit is long past NotFound's grace: NotFound means gone.
        check = await self._status_check(
            request.reference, row.started_at, timedelta(0)
        )
        verified = {
            Verdict.APPROVED: Outcome.APPROVED,
            Verdict.CANCELLED: Outcome.CANCELLED,
        }.get(check.verdict)
        if verified is None or outcomes_agree(verified, recorded):
            return ReconcileResult(
                reference=request.reference,
                recorded_outcome=recorded,
                xprizo_status=check.status_word,
            )
        conflicting = DepositResult(
            reference=row.reference,
            outcome=verified,
            decided_by=DecidedBy.RECHECK,
            reason=f"after {request.trigger}: Xprizo status {check.status_word}",
            transaction_id=check.transaction_id or row.transaction_id,
            amount=row.amount,
            currency=row.currency,
            phone_masked=row.phone_masked,
            xprizo_status=check.status_word,
            started_at=row.started_at,
            finished_at=_now(),
        )
        recorded_result = await asyncio.to_thread(
            self._ledger.record_outcome, conflicting
        )
        activity.logger.warning(
            "deposit %s: recorded %s but Xprizo now says %s; reconciliation item kept",
            request.reference,
            recorded,
            check.status_word,
        )
        return ReconcileResult(
            reference=request.reference,
            recorded_outcome=recorded,
            xprizo_status=check.status_word,
            conflict=recorded_result.conflict,
        )

    def all(self) -> list:
        """Every activity of this class, for the worker to register."""
        return [
            self.create_deposit,
            self.check_status,
            self.poll_until_decided,
            self.record_outcome,
            self.record_resolution,
            self.reconcile_closed_deposit,
        ]

    async def _status_check(
        self, reference: str, created_at: datetime, grace: timedelta
    ) -> StatusCheck:
        report = await self._xprizo.status_by_reference(reference)
        now = _now()
        verdict = map_status(
            report.status, since_create=now - created_at, not_found_grace=grace
        )
        return StatusCheck(
            verdict=verdict,
            status_word=report.status,
            transaction_id=report.transaction_id or None,
            amount=report.amount,
            currency=report.currency,
            reference=report.reference,
            checked_at=now,
        )


async def _sleep_heartbeating(duration: timedelta) -> None:
    """Sleep, telling Temporal we are alive; give way at once when the worker drains.

    Raising on shutdown (instead of sleeping through the grace period) lets the worker
    stop promptly; the server retries the poller on another worker.
    """
    remaining = duration.total_seconds()
    while remaining > 0:
        activity.heartbeat()
        step = min(HEARTBEAT_SLICE_SECONDS, remaining)
        try:
            await asyncio.wait_for(activity.wait_for_worker_shutdown(), timeout=step)
        except TimeoutError:
            remaining -= step
            continue
        raise ApplicationError(
            "worker shutting down; polling goes on on another worker",
            type="WorkerShutdown",
        )


def _now() -> datetime:
    return datetime.now(UTC)
