"""The deposit workflow: create at Xprizo, await a callback or poll, record the outcome.

Determinism: every side effect happens in an activity; the workflow only decides. The
Xprizo calls and the ledger writes are local activities (one history event each), and
the long fallback polling is one heartbeating activity, so a deposit's history stays
short however long it waits.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.deposit_activities import DepositActivities
    from deposits import metrics, search_attributes
    from deposits.models import (
        CallbackSignal,
        CreateResult,
        DecidedBy,
        DepositRequest,
        DepositResult,
        DepositState,
        DepositStatus,
        Mismatch,
        Outcome,
        PollRequest,
        Resolution,
        ResolutionRecord,
        StatusCheck,
        StatusCheckRequest,
        Verdict,
    )
    from deposits.validation import mask_phone
    from xprizo.models import DECISIVE_CALLBACK_TYPES

# How a failed local activity reaches the workflow: wrapped in an ActivityError, or as
# the activity's own ApplicationError or timeout. Cancellation is not among them.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TemporalTimeoutError)

MAX_CALLBACKS_KEPT = 20
FINAL_STATUSES = frozenset(
    {DepositStatus.APPROVED, DepositStatus.CANCELLED, DepositStatus.REJECTED}
)

XPRIZO_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidDepositRequest"],
)
# Ledger writes must eventually happen: they retry without a limit.
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["LedgerRefused"],
)
CREATE_START_TO_CLOSE = timedelta(seconds=30)
CREATE_SCHEDULE_TO_CLOSE = timedelta(minutes=5)
STATUS_START_TO_CLOSE = timedelta(seconds=30)
STATUS_SCHEDULE_TO_CLOSE = timedelta(minutes=2)
LEDGER_START_TO_CLOSE = timedelta(seconds=30)
POLL_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# The poller stops itself at the deadline; the server-side timeout is the backstop for
# a poller whose worker died, so it fires a little later (at most 30 s).
POLL_TIMEOUT_SLACK_MAX = timedelta(seconds=30)


class Trigger(StrEnum):
    """Why a status check is due before the schedule says so."""

    CALLBACK = "callback"
    OPERATOR = "operator recheck"


@workflow.defn
class DepositWorkflow:
    """One M-Pesa deposit, from the create call to its recorded outcome."""

    @workflow.init
    def __init__(self, request: DepositRequest) -> None:
        # The start event's time, never workflow.now(): a query during the first
        # workflow task can move where replay runs init, and with it now().
        started = workflow.info().start_time
        self._request = request
        self._state = DepositState(
            reference=request.reference,
            amount=request.amount,
            currency=request.currency,
            phone_masked=mask_phone(request.phone),
            started_at=started,
            deadline_at=started + request.policy.deadline,
        )
        self._triggers: list[Trigger] = []
        self._check_attempts = 0
        self._seen_callbacks: set[tuple[int, str | None, int | None]] = set()
        self._callbacks: list[CallbackSignal] = []
        self._resolution: Resolution | None = None

    @workflow.run
    async def run(self, request: DepositRequest) -> DepositResult:
        metrics.record_deposit_started()
        created = await self._create()
        if not created.created:
            result = await self._decide(
                Outcome.REJECTED, DecidedBy.CREATE, created.reason
            )
            return await self._close(result)

        check, decided_by = await self._wait_for_verdict(created)

        outcome, reason, mismatches = self._judge(check)
        result = await self._decide(outcome, decided_by, reason, check, mismatches)

        if result.outcome == Outcome.NEEDS_REVIEW:
            result = await self._await_review(result)
        return await self._close(result)

    # -- what operators and Xprizo can send -------------------------------------------

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
        if self._state.status in FINAL_STATUSES:
            workflow.logger.info(
                "deposit %s: %s callback after the outcome %s, nothing changes",
                self._request.reference,
                callback.status,
                self._state.outcome,
            )
            return
        if callback.status_type in DECISIVE_CALLBACK_TYPES:
            self._triggers.append(Trigger.CALLBACK)
        else:
            workflow.logger.info(
                "deposit %s: %s callback needs no status check",
                self._request.reference,
                callback.status,
            )

    @workflow.update
    async def recheck_now(self) -> DepositState:
        """Check the status at Xprizo now and return the state after the check."""
        attempts = self._check_attempts
        self._triggers.append(Trigger.OPERATOR)
        await workflow.wait_condition(
            lambda: (
                self._check_attempts > attempts or self._state.status in FINAL_STATUSES
            )
        )
        return self._state

    @recheck_now.validator
    def _validate_recheck_now(self) -> None:
        if self._state.status in FINAL_STATUSES:
            raise _refusal(
                f"deposit {self._request.reference} is already {self._state.status}; "
                "a recheck is only for pending or needs_review deposits"
            )
        if self._state.status == DepositStatus.CREATING:
            raise _refusal(
                f"deposit {self._request.reference} is still being created at Xprizo; "
                "retry the recheck in a few seconds"
            )

    @workflow.update
    async def resolve(self, resolution: Resolution) -> DepositState:
        """Settle a needs_review deposit as approved or cancelled, with a reason."""
        self._resolution = resolution
        await workflow.wait_condition(
            lambda: (
                self._state.status != DepositStatus.NEEDS_REVIEW
                or self._resolution is not resolution
            )
        )
        if self._state.status == DepositStatus.NEEDS_REVIEW:
            raise ApplicationError(
                f"the ledger refused to resolve deposit {self._request.reference}; "
                "it stays needs_review"
            )
        return self._state

    @resolve.validator
    def _validate_resolve(self, resolution: Resolution) -> None:
        if self._state.status != DepositStatus.NEEDS_REVIEW:
            raise _refusal(
                f"deposit {self._request.reference} is {self._state.status}; only a "
                "needs_review deposit can be resolved"
            )
        if self._resolution is not None:
            raise _refusal(
                f"deposit {self._request.reference} is already being resolved by "
                f"{self._resolution.operator}"
            )

    # -- the steps --------------------------------------------------------------------

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
        except ACTIVITY_FAILURES as err:
            invalid = _invalid_request(err)
            if invalid is not None:
                return CreateResult(
                    created=False, reason=invalid.message, created_at=workflow.now()
                )
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
        """Await callbacks, polling as a fallback, till Xprizo decides or time is up."""
        self._set_status(DepositStatus.PENDING, "waiting for Xprizo's callback")
        policy = self._request.policy

        # Before the first scheduled check only a callback can wake the deposit; most
        # deposits end here, with no poller ever started.
        first_wait = min(policy.next_check_after(timedelta(0)), policy.deadline)
        try:
            await workflow.wait_condition(
                lambda: bool(self._triggers), timeout=first_wait
            )
        except TimeoutError:
            if first_wait >= policy.deadline:
                # The deadline came before any check was due: the timer said so.
                final = await self._check_status("last status check at the deadline")
                return final, DecidedBy.DEADLINE

        poller: workflow.ActivityHandle[StatusCheck] | None = None
        checked: StatusCheck | None = None
        # No decision here compares workflow.now() with the deadline: the poller's own
        # return (or its server-side timeout) says the deadline came, as an event.
        while True:
            if not self._triggers:
                if poller is None:
                    # Right after a status check the poller waits an interval first.
                    poller = self._start_poller(created, check_at_once=checked is None)
                running = poller
                await workflow.wait_condition(
                    # Awaited within this iteration, so binding late is harmless.
                    lambda: running.done() or bool(self._triggers)  # noqa: B023
                )
            if poller is not None and poller.done():
                check = await self._poller_result(poller)
                poller = None
                if check is not None and check.verdict != Verdict.PENDING:
                    return check, DecidedBy.POLL
                break
            if self._triggers:
                decided_by = self._take_triggers()
                if poller is not None:
                    _abandon(poller)
                    poller = None
                checked = await self._check_status(f"status check after {decided_by}")
                if checked is not None and checked.verdict != Verdict.PENDING:
                    return checked, decided_by

        final = await self._check_status("last status check at the deadline")
        return final, DecidedBy.DEADLINE

    def _take_triggers(self) -> DecidedBy:
        callback = Trigger.CALLBACK in self._triggers
        self._triggers.clear()
        return DecidedBy.CALLBACK if callback else DecidedBy.RECHECK

    def _start_poller(
        self, created: CreateResult, *, check_at_once: bool
    ) -> workflow.ActivityHandle[StatusCheck]:
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
                check_at_once=check_at_once,
            ),
            schedule_to_close_timeout=max(deadline_at - workflow.now(), timedelta(0))
            + poll_slack(self._request.policy.deadline),
            heartbeat_timeout=POLL_HEARTBEAT_TIMEOUT,
            retry_policy=XPRIZO_CALL_RETRY,
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
            summary="status checks on Xprizo's schedule until it decides",
        )

    async def _poller_result(
        self, poller: workflow.ActivityHandle[StatusCheck]
    ) -> StatusCheck | None:
        try:
            check = await poller
        except ACTIVITY_FAILURES as err:
            # Its schedule-to-close backstop fired (a dead worker at the deadline):
            # the last check at the deadline decides.
            workflow.logger.warning(
                "deposit %s: polling ended without an answer (%s)",
                self._request.reference,
                err.cause or err,
            )
            return None
        self._note_check(check)
        return check

    async def _check_status(self, why: str) -> StatusCheck | None:
        """One status check; ``None`` when Xprizo could not be asked (still unknown)."""
        deciding = self._state.outcome is None
        if deciding:
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
        except ACTIVITY_FAILURES as err:
            workflow.logger.warning(
                "deposit %s: %s failed (%s), status still unknown",
                self._request.reference,
                why,
                err.cause or err,
            )
            check = None
        finally:
            self._check_attempts += 1
        if check is not None:
            self._note_check(check)
        if deciding and (check is None or check.verdict == Verdict.PENDING):
            word = check.status_word if check else "unknown"
            self._set_status(DepositStatus.PENDING, f"Xprizo says {word}")
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

    def _judge(
        self, check: StatusCheck | None
    ) -> tuple[Outcome, str | None, list[Mismatch]]:
        """The outcome a deciding status check gives; approval needs values to match."""
        if check is None:
            return Outcome.NEEDS_REVIEW, "status unknown at the deadline", []
        if check.verdict == Verdict.CANCELLED:
            return Outcome.CANCELLED, f"Xprizo status {check.status_word}", []
        if check.verdict == Verdict.PENDING:
            return (
                Outcome.NEEDS_REVIEW,
                f"still {check.status_word} at the deadline",
                [],
            )
        mismatches = self._mismatches(check)
        if mismatches:
            detail = "; ".join(
                f"{m.source} {m.field} {m.reported} != requested {m.requested}"
                for m in mismatches
            )
            return Outcome.NEEDS_REVIEW, f"approved but {detail}", mismatches
        return Outcome.APPROVED, f"Xprizo status {check.status_word}", []

    def _mismatches(self, check: StatusCheck) -> list[Mismatch]:
        """Where Xprizo's status or callbacks disagree with the request."""
        reported = [("status", check.amount, check.currency, check.reference)] + [
            (f"{c.status or 'callback'} callback", c.amount, c.currency, c.reference)
            for c in self._callbacks
        ]
        found: list[Mismatch] = []
        for source, amount, currency, reference in reported:
            found += self._disagreements(source, amount, currency, reference)
        return found

    def _disagreements(self, source, amount, currency, reference) -> list[Mismatch]:
        request = self._request
        found = []
        if amount is not None and amount != request.amount:
            found.append(Mismatch.of(source, "amount", request.amount, amount))
        if currency is not None and currency.upper() != request.currency.upper():
            found.append(Mismatch.of(source, "currency", request.currency, currency))
        if reference is not None and reference != request.reference:
            found.append(Mismatch.of(source, "reference", request.reference, reference))
        return found

    async def _decide(
        self,
        outcome: Outcome,
        decided_by: DecidedBy,
        reason: str | None,
        check: StatusCheck | None = None,
        mismatches: list[Mismatch] | None = None,
    ) -> DepositResult:
        """Record the outcome in the ledger, then make it visible."""
        state = self._state
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
            mismatches=mismatches or [],
            started_at=state.started_at,
            finished_at=workflow.now(),
        )
        recorded = await workflow.execute_local_activity_method(
            DepositActivities.record_outcome,
            result,
            start_to_close_timeout=LEDGER_START_TO_CLOSE,
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
        self._show_outcome(result)
        return result

    async def _await_review(self, result: DepositResult) -> DepositResult:
        """Stay open until an operator resolves the deposit or Xprizo settles it."""
        # Only a deposit still pending at the deadline may be settled by a later status
        # check; a value mismatch always needs a person.
        settle_by_status = not result.mismatches
        review_ends = workflow.now() + self._request.policy.review_window
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._resolution is not None or bool(self._triggers),
                    timeout=max(review_ends - workflow.now(), timedelta(seconds=1)),
                )
            except TimeoutError:
                workflow.logger.warning(
                    "deposit %s: review window ended unresolved; stays needs_review",
                    self._request.reference,
                )
                return result
            if self._resolution is not None:
                resolution = self._resolution
                settled = await self._settle(
                    result,
                    resolution.outcome,
                    DecidedBy.OPERATOR,
                    resolution.reason,
                    actor=resolution.operator,
                )
                if settled is not None:
                    return settled
                self._resolution = None
                continue
            decided_by = self._take_triggers()
            check = await self._check_status(
                f"status check in review after {decided_by}"
            )
            if not settle_by_status or check is None:
                continue
            outcome, reason, _ = self._judge(check)
            if outcome != Outcome.NEEDS_REVIEW:
                settled = await self._settle(
                    result, outcome, decided_by, reason, actor="xprizo-status"
                )
                if settled is not None:
                    return settled

    async def _settle(
        self,
        result: DepositResult,
        outcome: Outcome,
        decided_by: DecidedBy,
        reason: str,
        *,
        actor: str,
    ) -> DepositResult | None:
        """Change a recorded needs_review to its final outcome, once, with an audit row.

        ``None`` when the ledger refused: the deposit stays needs_review.
        """
        try:
            await workflow.execute_local_activity_method(
                DepositActivities.record_resolution,
                ResolutionRecord(
                    reference=result.reference,
                    outcome=outcome,
                    reason=reason,
                    actor=actor,
                ),
                start_to_close_timeout=LEDGER_START_TO_CLOSE,
                retry_policy=LEDGER_RETRY,
                summary=f"resolve needs_review as {outcome} in the ledger",
            )
        except ACTIVITY_FAILURES as err:
            workflow.logger.error(
                "deposit %s: ledger refused the resolution as %s: %s",
                result.reference,
                outcome,
                err.cause or err,
            )
            return None
        self._state.resolved_by = actor
        settled = result.model_copy(
            update={
                "outcome": outcome,
                "decided_by": decided_by,
                "reason": reason,
                "finished_at": workflow.now(),
            }
        )
        self._show_outcome(settled)
        return settled

    def _show_outcome(self, result: DepositResult) -> None:
        state = self._state
        state.outcome = result.outcome
        state.decided_by = result.decided_by
        state.reason = result.reason
        state.mismatches = result.mismatches
        state.finished_at = result.finished_at
        workflow.upsert_search_attributes(
            [search_attributes.DEPOSIT_STATUS.value_set(result.outcome.value)]
        )
        self._set_status(DepositStatus(result.outcome.value), result.reason or "")
        # A needs_review settled later counts again under its final outcome.
        metrics.record_outcome_metrics(result)
        workflow.logger.info(
            "deposit %s: outcome %s decided by %s (%s)",
            state.reference,
            result.outcome,
            result.decided_by,
            result.reason,
        )

    async def _close(self, result: DepositResult) -> DepositResult:
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


def _abandon(poller: workflow.ActivityHandle) -> None:
    """Cancel the poller without waiting for it (TRY_CANCEL: it stops at its next
    heartbeat) and collect its end, so no unretrieved exception is logged."""
    poller.cancel()
    poller.add_done_callback(lambda task: task.cancelled() or task.exception())


def _refusal(message: str) -> ApplicationError:
    """An update refused by its validator: nothing is written to the history."""
    return ApplicationError(message, type="UpdateRefused", non_retryable=True)


def poll_slack(deadline: timedelta) -> timedelta:
    """How long after the deadline the server gives up on a silent poller."""
    return min(POLL_TIMEOUT_SLACK_MAX, max(timedelta(seconds=1), deadline / 10))


def _invalid_request(err: Exception) -> ApplicationError | None:
    """The activity's refusal of a request that can never succeed, if that is it."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type == "InvalidDepositRequest":
        return cause
    return None
