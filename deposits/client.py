"""What a merchant's service imports to start deposits and read their outcomes."""

from __future__ import annotations

from decimal import Decimal

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from deposits import search_attributes
from deposits.models import DepositRequest, DepositResult, DepositState, DepositStatus
from deposits.settings import Settings
from deposits.validation import mask_phone, normalize_phone, validate_amount
from worker.temporal import connect
from workflows import DepositWorkflow


class DepositConflictError(Exception):
    """The reference is already used by a deposit with another amount or phone."""


def workflow_id(reference: str) -> str:
    """The deposit workflow's id: the reference carries everything."""
    return f"deposit-{reference}"


class DepositClient:
    """Start deposits, await their outcomes and read their state through Temporal."""

    def __init__(self, temporal: Client, settings: Settings) -> None:
        self._temporal = temporal
        self._settings = settings

    @classmethod
    async def connect(cls, settings: Settings) -> DepositClient:
        return cls(await connect(settings), settings)

    def build_request(
        self, *, reference: str, amount: Decimal | int | str, phone: str,
        description: str | None = None,
    ) -> DepositRequest:
        """Validate a deposit request; raises ValueError with what is accepted."""
        settings = self._settings
        return DepositRequest(
            reference=reference,
            amount=validate_amount(
                amount,
                minimum=settings.amount_minimum,
                maximum=settings.amount_maximum,
                allow_fractional=settings.allow_fractional_amounts,
            ),
            currency=settings.currency,
            phone=normalize_phone(phone),
            description=description,
            policy=settings.deposit_policy(),
        )

    async def start(
        self, *, reference: str, amount: Decimal | int | str, phone: str,
        description: str | None = None,
    ) -> WorkflowHandle[DepositWorkflow, DepositResult]:
        """Start a deposit, or return the one already started with the same request."""
        request = self.build_request(
            reference=reference, amount=amount, phone=phone, description=description
        )
        summary = (
            f"{request.currency} {request.amount} from {mask_phone(request.phone)}"
            f" · ref {request.reference}"
        )
        try:
            handle = await self._temporal.start_workflow(
                DepositWorkflow.run,
                request,
                id=workflow_id(reference),
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(
                            search_attributes.DEPOSIT_STATUS, DepositStatus.PENDING.value
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
            # Closed already: the reference is never reused, the same request gets it back.
            handle = self._temporal.get_workflow_handle_for(
                DepositWorkflow.run, workflow_id(reference)
            )
        await self._ensure_same_request(handle, request)
        return handle

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
                f"{original.currency} {original.amount} from {mask_phone(original.phone)}"
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
        raise LookupError(f"deposit {handle.id} has no history")

    async def result(self, reference: str) -> DepositResult:
        """Wait for a deposit's outcome."""
        handle = self._temporal.get_workflow_handle_for(
            DepositWorkflow.run, workflow_id(reference)
        )
        return await handle.result()

    async def state(self, reference: str) -> DepositState:
        """A deposit's current state (works on closed deposits too)."""
        handle = self._temporal.get_workflow_handle_for(
            DepositWorkflow.run, workflow_id(reference)
        )
        return await handle.query(DepositWorkflow.state)
