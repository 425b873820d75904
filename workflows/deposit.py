"""The deposit workflow: create at Xprizo, wait for a callback or poll, record the outcome.

Determinism: every side effect happens in an activity; the workflow only decides. The
Xprizo calls and the ledger write are local activities (one history event each), and
the long fallback polling is one heartbeating activity, so a deposit's history stays
short however long it waits.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.deposit_activities import DepositActivities
    from deposits import search_attributes
    from deposits.models import (
        CallbackSignal,
        CreateResult,
        DecidedBy,
        DepositRequest,
        DepositResult,
        DepositState,
        DepositStatus,
        Outcome,
        PollRequest,
        StatusCheck,
        StatusCheckRequest,
        Verdict,
    )
    from deposits.validation import mask_phone

# Callback status types that say Xprizo reached a decision (2 accepted, 3 rejected,
# 4 cancelled). "New" (1) and the test call (0) need no status check.
DECISIVE_CALLBACK_TYPES = frozenset({2, 3, 4})
MAX_CALLBACKS_KEPT = 20

XPRIZO_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidDepositRequest"],
)
# The ledger write must eventually happen: it retries without a limit.
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)
CREATE_START_TO_CLOSE = timedelta(seconds=30)
CREATE_SCHEDULE_TO_CLOSE = timedelta(minutes=5)
STATUS_START_TO_CLOSE = timedelta(seconds=30)
STATUS_SCHEDULE_TO_CLOSE = timedelta(minutes=2)
RECORD_START_TO_CLOSE = timedelta(seconds=30)
POLL_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# The poller stops itself at the deadline; the server-side timeout is the backstop for
# a poller whose worker died, so it fires a little later.
POLL_TIMEOUT_SLACK = timedelta(seconds=30)


@workflow.defn
class DepositWorkflow:
    """One M-Pesa deposit, from the create call to its recorded outcome."""

    @workflow.init
    def __init__(self, request: DepositRequest) -> None:
        now = workflow.now()
        self._request = request
        self._state = DepositState(
            reference=request.reference,
            amount=request.amount,
            currency=request.currency,
            phone_masked=mask_phone(request.phone),
            started_at=now,
            deadline_at=now + request.policy.deadline,
        )
        self._check_reasons: list[str] = []
        self._seen_callbacks: set[tuple[int, str | None, int | None]] = set()
        self._callbacks: list[CallbackSignal] = []

    @workflow.run
    async def run(self, request: DepositRequest) -> DepositResult:
        created = await self._create()
        if not created.created:
            return await self._finish(Outcome.REJECTED, DecidedBy.CREATE, created.reason)

        check, decided_by = await self._wait_for_verdict(created)

        outcome, reason = self._judge(check)
        return await self._finish(outcome, decided_by, reason, check)

    @workflow.query
    def state(self) -> DepositState:
        """The deposit's current state."""
        return self._state

    @workflow.signal
    def callback(self, callback: CallbackSignal) -> None:
        """A callback from Xprizo: a reason to check the status, never a verdict."""
        self._state.callbacks_received += 1
        key = (callback.status_type, callback.status, callback.transaction_id)
        if key in self._seen_callbacks:
            workflow.logger.info(
                "deposit %s: duplicate %s callback ignored",
                self._request.reference,
                callback.status,
            )
            return
        self._seen_callbacks.add(key)
        if len(self._callbacks) < MAX_CALLBACKS_KEPT:
            self._callbacks.append(callback)
        if self._state.transaction_id is None and callback.transaction_id:
            self._state.transaction_id = callback.transaction_id
        if self._state.outcome is not None:
            workflow.logger.info(
                "deposit %s: %s callback after the outcome %s, nothing changes",
                self._request.reference,
                callback.status,
                self._state.outcome,
            )
            return
        if callback.status_type in DECISIVE_CALLBACK_TYPES:
            self._check_reasons.append(f"{callback.status or 'decisive'} callback")
        else:
            workflow.logger.info(
                "deposit %s: %s callback needs no status check",
                self._request.reference,
                callback.status,
            )

    async def _create(self) -> CreateResult:
        self._set_status(DepositStatus.CREATING, "creating the deposit at Xprizo")
        try:
            created = await workflow.execute_local_activity_method(
                DepositActivities.create_deposit,
                self._request,
                start_to_close_timeout=CREATE_START_TO_CLOSE,
                schedule_to_close_timeout=CREATE_SCHEDULE_TO_CLOSE,
                retry_policy=XPRIZO_CALL_RETRY,
                summary="create the M-Pesa deposit at Xprizo",
            )
        except ActivityError as err:
            # Whether Xprizo created it is unknown: the status checks will tell.
            workflow.logger.warning(
                "deposit %s: create gave no answer (%s), checking status instead",
                self._request.reference,
                err.cause or err,
            )
            created = CreateResult(created=True, created_at=workflow.now())
        self._state.created_at = created.created_at
        self._state.transaction_id = created.transaction_id
        return created

    async def _wait_for_verdict(
        self, created: CreateResult
    ) -> tuple[StatusCheck | None, DecidedBy]:
        """Wait for callbacks and poll as a fallback until Xprizo decides or time is up."""
        self._set_status(DepositStatus.PENDING, "waiting for Xprizo's callback")
        policy = self._request.policy
        deadline_at = self._state.deadline_at
        assert deadline_at is not None

        # Before the first scheduled check only a callback can wake the deposit; most
        # deposits end here, with no poller ever started.
        first_wait = min(policy.next_check_after(timedelta(0)), policy.deadline)
        poller: workflow.ActivityHandle[StatusCheck] | None = None
        try:
            await workflow.wait_condition(
                lambda: bool(self._check_reasons), timeout=first_wait
            )
        except TimeoutError:
            pass

        while True:
            if not self._check_reasons:
                if workflow.now() >= deadline_at:
                    break
                if poller is None:
                    poller = self._start_poller(created)
                await workflow.wait_condition(
                    lambda: poller.done() or bool(self._check_reasons)
                )
            if self._check_reasons:
                reasons = ", ".join(self._check_reasons)
                self._check_reasons.clear()
                if poller is not None:
                    poller.cancel()
                    poller = None
                check = await self._check_status(f"status check after {reasons}")
                if check is not None and check.verdict != Verdict.PENDING:
                    return check, DecidedBy.CALLBACK
                continue
            assert poller is not None
            try:
                check = await poller
            except ActivityError as err:
                workflow.logger.warning(
                    "deposit %s: polling ended without an answer (%s)",
                    self._request.reference,
                    err.cause or err,
                )
                check = None
            poller = None
            if check is not None and check.verdict != Verdict.PENDING:
                self._note_check(check)
                return check, DecidedBy.POLL
            break

        final = await self._check_status("last status check at the deadline")
        return final, DecidedBy.DEADLINE

    def _start_poller(self, created: CreateResult) -> workflow.ActivityHandle[StatusCheck]:
        deadline_at = self._state.deadline_at
        assert deadline_at is not None
        self._set_status(DepositStatus.PENDING, "no callback yet: polling Xprizo")
        return workflow.start_activity_method(
            DepositActivities.poll_until_decided,
            PollRequest(
                reference=self._request.reference,
                created_at=created.created_at,
                policy=self._request.policy,
                stop_at=deadline_at,
            ),
            schedule_to_close_timeout=deadline_at - workflow.now() + POLL_TIMEOUT_SLACK,
            heartbeat_timeout=POLL_HEARTBEAT_TIMEOUT,
            retry_policy=XPRIZO_CALL_RETRY,
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
            summary="status checks on Xprizo's schedule until it decides",
        )

    async def _check_status(self, why: str) -> StatusCheck | None:
        """One status check; ``None`` when Xprizo could not be asked (still unknown)."""
        self._set_status(DepositStatus.CHECKING, why)
        assert self._state.created_at is not None
        try:
            check = await workflow.execute_local_activity_method(
                DepositActivities.check_status,
                StatusCheckRequest(
                    reference=self._request.reference,
                    created_at=self._state.created_at,
                    not_found_grace=self._request.policy.not_found_grace,
                ),
                start_to_close_timeout=STATUS_START_TO_CLOSE,
                schedule_to_close_timeout=STATUS_SCHEDULE_TO_CLOSE,
                retry_policy=XPRIZO_CALL_RETRY,
                summary=why,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "deposit %s: %s failed (%s), status still unknown",
                self._request.reference,
                why,
                err.cause or err,
            )
            self._set_status(DepositStatus.PENDING, "status unknown, waiting")
            return None
        self._note_check(check)
        if check.verdict == Verdict.PENDING:
            self._set_status(DepositStatus.PENDING, f"Xprizo says {check.status_word}")
        return check

    def _note_check(self, check: StatusCheck) -> None:
        self._state.status_checks += 1
        self._state.last_xprizo_status = check.status_word
        if check.transaction_id:
            self._state.transaction_id = check.transaction_id
        workflow.logger.info(
            "deposit %s: Xprizo status %s (%s)",
            self._request.reference,
            check.status_word,
            check.verdict,
        )

    def _judge(self, check: StatusCheck | None) -> tuple[Outcome, str | None]:
        """Turn the deciding status check into an outcome; approval needs values to match."""
        if check is None:
            return Outcome.NEEDS_REVIEW, "status unknown at the deadline"
        if check.verdict == Verdict.CANCELLED:
            return Outcome.CANCELLED, f"Xprizo status {check.status_word}"
        if check.verdict == Verdict.PENDING:
            return Outcome.NEEDS_REVIEW, f"still {check.status_word} at the deadline"
        mismatches = self._mismatches(check)
        if mismatches:
            return Outcome.NEEDS_REVIEW, "approved but " + "; ".join(mismatches)
        return Outcome.APPROVED, f"Xprizo status {check.status_word}"

    def _mismatches(self, check: StatusCheck) -> list[str]:
        """Where Xprizo's status or callbacks disagree with the request."""
        request = self._request
        found: list[str] = []
        reported = [("status", check.amount, check.currency, check.reference)] + [
            (f"{c.status or 'callback'} callback", c.amount, c.currency, c.reference)
            for c in self._callbacks
        ]
        for source, amount, currency, reference in reported:
            if amount is not None and amount != request.amount:
                found.append(f"{source} amount {amount} != requested {request.amount}")
            if currency is not None and currency.upper() != request.currency.upper():
                found.append(
                    f"{source} currency {currency} != requested {request.currency}"
                )
            if reference is not None and reference != request.reference:
                found.append(f"{source} reference {reference} != {request.reference}")
        return found

    async def _finish(
        self,
        outcome: Outcome,
        decided_by: DecidedBy,
        reason: str | None,
        check: StatusCheck | None = None,
    ) -> DepositResult:
        state = self._state
        state.outcome = outcome
        state.decided_by = decided_by
        state.reason = reason
        state.finished_at = workflow.now()
        result = DepositResult(
            reference=state.reference,
            outcome=outcome,
            decided_by=decided_by,
            reason=reason,
            transaction_id=state.transaction_id,
            amount=state.amount,
            currency=state.currency,
            phone_masked=state.phone_masked,
            xprizo_status=check.status_word if check else None,
            started_at=state.started_at,
            finished_at=state.finished_at,
        )
        recorded = await workflow.execute_local_activity_method(
            DepositActivities.record_outcome,
            result,
            start_to_close_timeout=RECORD_START_TO_CLOSE,
            retry_policy=LEDGER_RETRY,
            summary=f"record the outcome {outcome} in the ledger",
        )
        if recorded.conflict:
            workflow.logger.warning(
                "deposit %s: ledger already held %s, %s kept as a reconciliation item",
                state.reference,
                recorded.recorded_outcome,
                outcome,
            )
        workflow.upsert_search_attributes(
            [search_attributes.DEPOSIT_STATUS.value_set(outcome.value)]
        )
        self._set_status(DepositStatus(outcome.value), reason or outcome.value)
        workflow.logger.info(
            "deposit %s: outcome %s decided by %s (%s)",
            state.reference,
            outcome,
            decided_by,
            reason,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _set_status(self, status: DepositStatus, detail: str) -> None:
        if status != self._state.status:
            workflow.logger.info(
                "deposit %s: %s -> %s (%s)",
                self._request.reference,
                self._state.status,
                status,
                detail,
            )
        self._state.status = status
        workflow.set_current_details(
            f"**{status.value}**: {detail}\n\n"
            f"{self._state.currency} {self._state.amount} from "
            f"{self._state.phone_masked}, {self._state.status_checks} status checks, "
            f"{self._state.callbacks_received} callbacks"
        )
