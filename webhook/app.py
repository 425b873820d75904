"""The HTTP endpoint Xprizo calls; each callback becomes a signal to its deposit.

It never starts a deposit and never decides one: it passes the callback on as a reason
to check the status, keeps every callback in the ledger, and answers fast. The only
5xx it gives means "not recorded or not signalled, retry": everything else is 2xx or a
4xx that a retry cannot fix.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from deposits.client import workflow_id
from deposits.models import CallbackSignal, Outcome, outcomes_agree
from deposits.reconciliation import request_reconciliation
from deposits.settings import Settings
from ledger import Ledger
from workflows import DepositWorkflow
from xprizo.models import (
    DECISIVE_CALLBACK_TYPES,
    MAX_STATUS_WORD,
    Callback,
    CallbackType,
    transaction_id_or_none,
)

log = logging.getLogger(__name__)

SUCCESS = {"status": "success"}
CALLBACK_PATH = "/xprizo/callback/{token}"
# Callbacks that carry no decision: recorded, not signalled, so a deposit's history
# holds only the callbacks that can change something.
UNSIGNALLED_TYPES = frozenset({CallbackType.NONE, CallbackType.NEW})
# What a decisive callback claims; only Xprizo's status endpoint can confirm it.
CLAIMED_OUTCOMES = {
    CallbackType.ACCEPTED: Outcome.APPROVED,
    CallbackType.REJECTED: Outcome.CANCELLED,
    CallbackType.CANCELLED: Outcome.CANCELLED,
}
# A reference this product could have issued (the start request's own rule); anything
# else cannot name one of our deposits and must not reach a workflow id.
REFERENCE_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The ledger keeps status types as 32-bit integers.
MAX_STATUS_TYPE = 2**31 - 1

CALLBACKS = Counter(
    "deposits_webhook_callbacks",
    "Callbacks the webhook receiver answered, by what became of them",
    ["result"],
)


class CallbackResult(StrEnum):
    """What became of a callback; the ledger's ``callbacks.result`` and the metric."""

    SIGNALLED = "signalled"
    NO_DECISION = "no_decision"
    UNKNOWN_TYPE = "unknown_type"
    UNMATCHED = "unmatched"
    CLOSED_OR_UNKNOWN = "closed_or_unknown"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    SIGNAL_FAILED = "signal_failed"
    # Counted only: a request without the secret is not a callback and is not kept.
    WRONG_SECRET = "wrong_secret"
    NOT_RECORDED = "not_recorded"


for _result in CallbackResult:
    CALLBACKS.labels(_result.value)


class BodyTooLarge(Exception):
    """The body passed the cap; ``head`` holds what was read before stopping."""

    def __init__(self, head: bytes) -> None:
        super().__init__("body too large")
        self.head = head


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(b"")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(bytes(body[:limit]))
    return bytes(body)


def parse_callback(raw: bytes) -> Callback:
    """Parse raw bytes as a callback whatever the Content-Type; ValueError says why."""
    try:
        callback = Callback.from_json(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"body is not an Xprizo callback ({problems})") from None
    except RecursionError:
        raise ValueError("body is not JSON: nested too deeply") from None
    except ValueError as err:  # JSON syntax and undecodable bytes
        raise ValueError(f"body is not JSON: {err}") from None
    if not 0 <= callback.status_type <= MAX_STATUS_TYPE:
        raise ValueError(
            f"body is not an Xprizo callback (statusType {callback.status_type} "
            "is not a status: 0 test, 1 new, 2 accepted, 3 rejected, 4 cancelled)"
        )
    return callback


def callback_reference(callback: Callback) -> str | None:
    """The callback's reference when it could be one of ours, else None."""
    reference = callback.reference
    if reference and REFERENCE_SHAPE.fullmatch(reference):
        return reference
    return None


def callback_transaction_id(callback: Callback) -> int | None:
    """Xprizo's transaction id; None for 0 (a "new" callback) or an implausible one."""
    transaction = callback.transaction
    return transaction_id_or_none(transaction.id) if transaction else None


def create_app(settings: Settings, temporal: Client, ledger: Ledger) -> FastAPI:
    """The receiver's app, signalling through ``temporal`` and keeping callbacks."""
    # Internet-facing: no OpenAPI document, no docs pages.
    app = FastAPI(
        title="Xprizo callback receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    secret = settings.webhook_secret.get_secret_value().encode()
    limit = settings.webhook_max_body_bytes
    signal_timeout = timedelta(seconds=settings.webhook_signal_timeout_seconds)

    async def keep(
        raw: bytes,
        result: CallbackResult,
        callback: Callback | None = None,
        reference: str | None = None,
    ) -> bool:
        """Record the callback; False when the ledger could not take it."""
        status = (
            callback.status[:MAX_STATUS_WORD] if callback and callback.status else None
        )
        try:
            await asyncio.to_thread(
                ledger.record_callback,
                raw=raw,
                result=result.value,
                reference=reference,
                transaction_id=callback_transaction_id(callback) if callback else None,
                status_type=callback.status_type if callback else None,
                status=status,
            )
        except Exception as err:  # any database failure: Xprizo must retry
            log.error(
                "callback for %s (%s) could not be recorded: %s",
                reference,
                result.value,
                type(err).__name__,
            )
            CALLBACKS.labels(CallbackResult.NOT_RECORDED.value).inc()
            return False
        CALLBACKS.labels(result.value).inc()
        return True

    def answer(recorded: bool, status_code: int, body: dict[str, Any]) -> JSONResponse:
        if not recorded:
            return JSONResponse(
                {"detail": "callback could not be recorded, retry later"},
                status_code=503,
            )
        return JSONResponse(body, status_code=status_code)

    @app.post(CALLBACK_PATH)
    async def receive_callback(token: str, request: Request) -> Response:
        if not hmac.compare_digest(token.encode(), secret):
            CALLBACKS.labels(CallbackResult.WRONG_SECRET.value).inc()
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        try:
            raw = await read_capped(request, limit)
        except BodyTooLarge as err:
            log.warning("callback refused: body larger than %s bytes", limit)
            recorded = await keep(err.head, CallbackResult.TOO_LARGE)
            detail = f"body larger than {limit} bytes"
            return answer(recorded, 413, {"detail": detail})
        except ClientDisconnect:
            return Response(status_code=400)

        try:
            callback = parse_callback(raw)
        except ValueError as err:
            log.warning("callback refused: %s", err)
            recorded = await keep(raw, CallbackResult.INVALID)
            return answer(recorded, 400, {"detail": str(err)})

        reference = callback_reference(callback)
        if callback.status_type not in DECISIVE_CALLBACK_TYPES:
            kind = (
                CallbackResult.NO_DECISION
                if callback.status_type in UNSIGNALLED_TYPES
                else CallbackResult.UNKNOWN_TYPE
            )
            log.info(
                "callback %s (type %s) for %s kept, no signal needed",
                callback.status,
                callback.status_type,
                reference,
            )
            return answer(await keep(raw, kind, callback, reference), 200, SUCCESS)

        transaction_id = callback_transaction_id(callback)
        matched_by = "reference"
        if reference is None and transaction_id is not None:
            try:
                reference = await asyncio.to_thread(
                    ledger.reference_for_transaction, transaction_id
                )
            except Exception as err:  # the lookup is a convenience; keep the callback
                log.warning(
                    "callback for transaction %s: lookup failed: %s",
                    transaction_id,
                    type(err).__name__,
                )
            matched_by = "transaction id"
        if reference is None:
            log.warning(
                "callback %s matching no deposit (transaction %s) kept as unmatched",
                callback.status,
                transaction_id,
            )
            recorded = await keep(raw, CallbackResult.UNMATCHED, callback)
            return answer(recorded, 200, SUCCESS)

        transaction = callback.transaction
        signal = CallbackSignal(
            status_type=callback.status_type,
            status=callback.status,
            transaction_id=transaction_id,
            reference=transaction.reference if transaction else None,
            amount=transaction.amount if transaction else None,
            currency=transaction.currency_code if transaction else None,
            received_at=datetime.now(UTC),
        )
        handle = temporal.get_workflow_handle_for(
            DepositWorkflow.run, workflow_id(reference)
        )
        try:
            await handle.signal(
                DepositWorkflow.callback, signal, rpc_timeout=signal_timeout
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                log.error(
                    "callback for %s could not be signalled: %s",
                    reference,
                    err.status.name if err.status else err,
                )
                await keep(raw, CallbackResult.SIGNAL_FAILED, callback, reference)
                return JSONResponse(
                    {"detail": "callback could not be delivered, retry later"},
                    status_code=503,
                )
            # The deposit is closed or was never started here: keep it, answer 200.
            recorded = await keep(
                raw, CallbackResult.CLOSED_OR_UNKNOWN, callback, reference
            )
            log.info(
                "callback %s for %s: deposit closed or unknown",
                callback.status,
                reference,
            )
            try:
                await reverify_if_conflicting(reference, callback)
            except Exception as err:
                log.error(
                    "callback for %s: re-verification could not be started: %s",
                    reference,
                    type(err).__name__,
                )
                return JSONResponse(
                    {"detail": "callback could not be delivered, retry later"},
                    status_code=503,
                )
            return answer(recorded, 200, SUCCESS)
        except Exception as err:  # a broken connection is as unknown as an RPC error
            log.error(
                "callback for %s could not be signalled: %s",
                reference,
                type(err).__name__,
            )
            await keep(raw, CallbackResult.SIGNAL_FAILED, callback, reference)
            return JSONResponse(
                {"detail": "callback could not be delivered, retry later"},
                status_code=503,
            )
        log.info(
            "callback %s for %s signalled (matched by %s)",
            callback.status,
            reference,
            matched_by,
        )
        recorded = await keep(raw, CallbackResult.SIGNALLED, callback, reference)
        return answer(recorded, 200, SUCCESS)

    async def reverify_if_conflicting(reference: str, callback: Callback) -> None:
        """A closed deposit whose callback claims another outcome is checked again.

        The callback is only a claim: the reconcile workflow asks Xprizo's status and
        keeps a confirmed conflict as a reconciliation item; nothing is overwritten.
        """
        claimed = CLAIMED_OUTCOMES.get(callback.status_type)
        row = await asyncio.to_thread(ledger.outcome, reference)
        if claimed is None or row is None:
            return
        if outcomes_agree(claimed, Outcome(row.outcome)):
            return
        log.warning(
            "callback %s for %s conflicts with the recorded %s: re-verifying",
            callback.status,
            reference,
            row.outcome,
        )
        await request_reconciliation(
            temporal,
            settings.task_queue,
            reference,
            f"a late {callback.status or 'decisive'} callback",
        )

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
