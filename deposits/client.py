"""What a merchant's service imports to start deposits and read their outcomes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from deposits import search_attributes
from deposits.models import (
    DecidedBy,
    DepositRequest,
    DepositResult,
    DepositState,
    DepositStatus,
    Outcome,
)
from deposits.settings import Settings
from deposits.validation import mask_phone, normalize_phone, validate_amount
from worker.temporal import connect
from workflows import DepositWorkflow

WORKFLOW_ID_PREFIX = "deposit-"
REFERENCE_RULE = "1 to 64 letters, digits or . _ : -"
# DepositRequest's own rule, checked here to name the field in one clear message.
REFERENCE_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
QUERY_TIMEOUT = timedelta(seconds=5)
MAX_PAGE_SIZE = 500


class DepositConflictError(Exception):
    """The reference is already used by a deposit with another amount or phone."""


class DepositNotFoundError(LookupError):
    """No deposit was ever started with this reference."""


class DepositValidationError(ValueError):
    """A deposit request with invalid fields; ``errors`` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class DepositQueryError(ValueError):
    """A list filter the deposits cannot be searched by; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def workflow_id(reference: str) -> str:
    """The deposit workflow's id: the reference carries everything."""
    return f"{WORKFLOW_ID_PREFIX}{reference}"


@dataclass(frozen=True)
class DepositStart:
    """A started deposit; ``created`` is False when this reference already existed."""

    handle: WorkflowHandle[DepositWorkflow, DepositResult]
    created: bool


class DepositView(BaseModel):
    """A deposit as a service sees it: where it is, how it ended, and when."""

    reference: str
    status: DepositStatus
    workflow_status: str
    outcome: Outcome | None = None
    decided_by: DecidedBy | None = None
    reason: str | None = None
    amount: Decimal
    currency: str
    phone_masked: str
    transaction_id: int | None = None
    callbacks_received: int | None = None
    status_checks: int | None = None
    last_xprizo_status: str | None = None
    started_at: datetime
    created_at: datetime | None = None
    deadline_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Whether the deposit has its outcome (or its workflow stopped without one)."""
        return self.outcome is not None or self.workflow_status != "running"


class DepositSummary(BaseModel):
    """One line of a deposit list, from Temporal's visibility store."""

    reference: str
    status: str
    amount: Decimal | None = None
    workflow_status: str
    started_at: datetime
    closed_at: datetime | None = None


class DepositPage(BaseModel):
    """One page of a deposit list; pass ``next_page_token`` back for the next."""

    deposits: list[DepositSummary]
    next_page_token: str | None = None


class DepositClient:
    """Start deposits, await their outcomes and read their state through Temporal."""

    def __init__(self, temporal: Client, settings: Settings) -> None:
        self._temporal = temporal
        self._settings = settings

    @classmethod
    async def connect(cls, settings: Settings) -> DepositClient:
        """A client connected to the Temporal server the settings name."""
        return cls(await connect(settings), settings)

    @property
    def temporal(self) -> Client:
        """The underlying Temporal client."""
        return self._temporal

    def build_request(
        self,
        *,
        reference: str,
        amount: Decimal | int | str,
        phone: str,
        description: str | None = None,
    ) -> DepositRequest:
        """Validate a deposit request; DepositValidationError names every bad field."""
        settings = self._settings
        errors: dict[str, str] = {}
        if not isinstance(reference, str) or not REFERENCE_SHAPE.fullmatch(reference):
            errors["reference"] = f"reference must be {REFERENCE_RULE}"
        try:
            checked_amount = validate_amount(
                amount,
                minimum=settings.amount_minimum,
                maximum=settings.amount_maximum,
                allow_fractional=settings.allow_fractional_amounts,
            )
        except ValueError as err:
            errors["amount"] = str(err)
        try:
            checked_phone = normalize_phone(phone)
        except ValueError as err:
            errors["phone"] = str(err)
        if errors:
            raise DepositValidationError(errors)
        return DepositRequest(
            reference=reference,
            amount=checked_amount,
            currency=settings.currency,
            phone=checked_phone,
            description=description,
            policy=settings.deposit_policy(),
        )

    async def start(
        self,
        *,
        reference: str,
        amount: Decimal | int | str,
        phone: str,
        description: str | None = None,
    ) -> WorkflowHandle[DepositWorkflow, DepositResult]:
        """Start a deposit, or return the one already started with the same request."""
        started = await self.start_deposit(
            reference=reference, amount=amount, phone=phone, description=description
        )
        return started.handle

    async def start_deposit(
        self,
        *,
        reference: str,
        amount: Decimal | int | str,
        phone: str,
        description: str | None = None,
    ) -> DepositStart:
        """Start a deposit idempotently by reference and say whether this call made it.

        The same request again gets the existing deposit back (running or closed); the
        same reference with another amount or phone raises DepositConflictError.
        """
        request = self.build_request(
            reference=reference, amount=amount, phone=phone, description=description
        )
        summary = (
            f"{request.currency} {request.amount} from {mask_phone(request.phone)}"
            f" · ref {request.reference}"
        )
        created = True
        try:
            # FAIL rather than USE_EXISTING: the error is how this call learns the
            # deposit existed, and it then returns that deposit exactly as USE_EXISTING
            # would have.
            handle = await self._temporal.start_workflow(
                DepositWorkflow.run,
                request,
                id=workflow_id(reference),
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(
                            search_attributes.DEPOSIT_STATUS,
                            DepositStatus.PENDING.value,
                        ),
                        SearchAttributePair(
                            search_attributes.DEPOSIT_REFERENCE, reference
                        ),
                        SearchAttributePair(
                            search_attributes.DEPOSIT_AMOUNT_CENTS,
                            search_attributes.amount_in_cents(request.amount),
                        ),
                    ]
                ),
                static_summary=summary,
                static_details=(
                    f"M-Pesa deposit of {request.currency} {request.amount} from "
                    f"{mask_phone(request.phone)}, reference {reference}"
                ),
            )
        except WorkflowAlreadyStartedError:
            created = False
            handle = self._handle(reference)
        if not created:
            await self._ensure_same_request(handle, request)
        return DepositStart(handle=handle, created=created)

    async def _ensure_same_request(
        self, handle: WorkflowHandle, request: DepositRequest
    ) -> None:
        original = await self._original_request(handle)
        if (original.amount, original.phone, original.currency) != (
            request.amount,
            request.phone,
            request.currency,
        ):
            raise DepositConflictError(
                f"reference {request.reference} is already used by a deposit of "
                f"{original.currency} {original.amount} from "
                f"{mask_phone(original.phone)}"
            )

    async def _original_request(self, handle: WorkflowHandle) -> DepositRequest:
        """The request the deposit was started with, read from its first event."""
        converter = self._temporal.data_converter
        async for event in handle.fetch_history_events():
            attrs = event.workflow_execution_started_event_attributes
            [request] = await converter.decode(
                attrs.input.payloads, type_hints=[DepositRequest]
            )
            return request
        raise DepositNotFoundError(f"deposit {handle.id} has no history")

    def _handle(self, reference: str) -> WorkflowHandle[DepositWorkflow, DepositResult]:
        return self._temporal.get_workflow_handle_for(
            DepositWorkflow.run, workflow_id(reference)
        )

    async def result(self, reference: str) -> DepositResult:
        """Wait for the deposit's workflow to close with its final outcome.

        A ``needs_review`` deposit stays open until an operator resolves it; to hear
        about ``needs_review`` as soon as it is recorded, use ``wait_for_outcome``.
        """
        return await self._handle(reference).result()

    async def wait_for_outcome(
        self, reference: str, *, poll_every: float = 1.0
    ) -> DepositView:
        """Wait until the deposit has an outcome, ``needs_review`` included."""
        while True:
            view = await self.view(reference)
            if view.ended:
                return view
            await asyncio.sleep(poll_every)

    async def state(self, reference: str) -> DepositState:
        """A deposit's current state from the workflow's query (needs a worker)."""
        return await self._handle(reference).query(DepositWorkflow.state)

    async def view(self, reference: str) -> DepositView:
        """A deposit's state, outcome and timestamps; DepositNotFoundError if unknown.

        A running deposit answers its query; a completed one is read from its
        result in the history, so this works with every worker down.
        """
        handle = self._handle(reference)
        try:
            described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                missing = f"no deposit with reference {reference}"
                raise DepositNotFoundError(missing) from None
            raise
        workflow_status = _status_word(described.status)
        if described.status == WorkflowExecutionStatus.RUNNING:
            try:
                state = await handle.query(
                    DepositWorkflow.state, rpc_timeout=QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError):
                pass  # no worker answered in time: fall back to what the server knows
            else:
                return DepositView(
                    **state.model_dump(), workflow_status=workflow_status
                )
        elif described.status == WorkflowExecutionStatus.COMPLETED:
            result = await handle.result()
            return DepositView(
                reference=result.reference,
                status=DepositStatus(result.outcome.value),
                workflow_status=workflow_status,
                outcome=result.outcome,
                decided_by=result.decided_by,
                reason=result.reason,
                amount=result.amount,
                currency=result.currency,
                phone_masked=result.phone_masked,
                transaction_id=result.transaction_id,
                last_xprizo_status=result.xprizo_status,
                started_at=result.started_at,
                finished_at=result.finished_at,
            )
        request = await self._original_request(handle)
        return DepositView(
            reference=request.reference,
            status=_known_status(described),
            workflow_status=workflow_status,
            amount=request.amount,
            currency=request.currency,
            phone_masked=mask_phone(request.phone),
            started_at=described.start_time,
            finished_at=described.close_time,
        )

    async def list(
        self,
        *,
        status: DepositStatus | None = None,
        since: datetime | None = None,
        limit: int = 50,
        page_token: str | None = None,
    ) -> DepositPage:
        """Deposits on this task queue, newest first, from Temporal's visibility.

        Visibility is eventually consistent: a deposit started a moment ago may take
        a moment to appear, and its status is the last one the workflow published.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise DepositQueryError("limit", f"limit must be 1 to {MAX_PAGE_SIZE}")
        clauses = [
            "WorkflowType = 'DepositWorkflow'",
            f"TaskQueue = '{_quoted(self._settings.task_queue)}'",
        ]
        if status is not None:
            clauses.append(f"DepositStatus = '{DepositStatus(status).value}'")
        if since is not None:
            clauses.append(f"StartTime >= '{_visibility_time(since)}'")
        token = _decode_token(page_token) if page_token else None
        listing = self._temporal.list_workflows(
            " AND ".join(clauses),
            page_size=limit,
            next_page_token=token,
            rpc_timeout=QUERY_TIMEOUT,
        )
        await listing.fetch_next_page(page_size=limit)
        next_token = listing.next_page_token
        return DepositPage(
            deposits=[_summary(execution) for execution in listing.current_page or []],
            next_page_token=base64.urlsafe_b64encode(next_token).decode()
            if next_token
            else None,
        )


def _status_word(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status is not None else "unknown"


def _known_status(execution: WorkflowExecution) -> DepositStatus:
    word = execution.typed_search_attributes.get(search_attributes.DEPOSIT_STATUS)
    try:
        return DepositStatus(word)
    except ValueError:
        return DepositStatus.PENDING


def _summary(execution: WorkflowExecution) -> DepositSummary:
    attributes = execution.typed_search_attributes
    cents = attributes.get(search_attributes.DEPOSIT_AMOUNT_CENTS)
    reference = attributes.get(search_attributes.DEPOSIT_REFERENCE) or (
        execution.id.removeprefix(WORKFLOW_ID_PREFIX)
    )
    return DepositSummary(
        reference=reference,
        status=attributes.get(search_attributes.DEPOSIT_STATUS) or "unknown",
        amount=None if cents is None else Decimal(cents) / 100,
        workflow_status=_status_word(execution.status),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _visibility_time(since: datetime) -> str:
    if since.tzinfo is None:
        raise DepositQueryError(
            "since", "since must carry a timezone, e.g. 2025-01-31T00:00Z"
        )
    try:
        utc = since.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not 1970 <= utc.year <= 9999:
        raise DepositQueryError("since", "since must be between 1970 and 9999")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decode_token(token: str) -> bytes:
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise DepositQueryError(
            "page_token", "page_token is not a token this API handed out"
        )
    return decoded
