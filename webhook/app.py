"""The HTTP endpoint Xprizo calls; each callback becomes a signal to its deposit.

It never starts a deposit and never decides one: it passes the callback on as a reason
to check the status, keeps every callback in the ledger, and answers fast.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from deposits.models import CallbackSignal
from deposits.settings import Settings
from ledger import Ledger
from workflows import DepositWorkflow
from xprizo.models import Callback

log = logging.getLogger(__name__)

SUCCESS = {"status": "success"}
# Callbacks that carry no decision: recorded, not signalled.
UNSIGNALLED_TYPES = frozenset({0, 1})


def workflow_id(reference: str) -> str:
    """The deposit workflow's id for a reference."""
    return f"deposit-{reference}"


def create_app(settings: Settings, temporal: Client, ledger: Ledger) -> FastAPI:
    """The receiver's app, signalling through ``temporal`` and keeping callbacks."""
    app = FastAPI(title="Xprizo callback receiver", docs_url=None, redoc_url=None)
    secret = settings.webhook_secret.get_secret_value().encode()

    async def keep(raw: bytes, result: str, callback: Callback | None = None) -> None:
        transaction = callback.transaction if callback else None
        await asyncio.to_thread(
            ledger.record_callback,
            raw=raw,
            result=result,
            reference=transaction.reference if transaction else None,
            transaction_id=transaction.id if transaction else None,
            status_type=callback.status_type if callback else None,
            status=callback.status if callback else None,
        )

    @app.post("/xprizo/callback/{token}")
    async def receive_callback(token: str, request: Request) -> JSONResponse:
        if not hmac.compare_digest(token.encode(), secret):
            return JSONResponse({"detail": "unknown callback address"}, status_code=404)
        raw = await request.body()
        try:
            callback = Callback.from_json(raw)
        except ValueError as err:  # a pydantic ValidationError is one too
            await keep(raw, "invalid")
            return JSONResponse(
                {
                    "detail": "body is not an Xprizo callback: expected JSON with an "
                    "integer statusType and an optional transaction object",
                    "errors": err.errors(include_url=False, include_input=False)
                    if isinstance(err, ValidationError)
                    else [{"msg": f"not JSON: {err}"}],
                },
                status_code=400,
            )
        transaction = callback.transaction
        reference = transaction.reference.strip() if transaction and transaction.reference else None
        if callback.status_type in UNSIGNALLED_TYPES:
            await keep(raw, "no_decision", callback)
            log.info("callback %s for %s kept, no signal needed", callback.status, reference)
            return JSONResponse(SUCCESS)
        if not reference:
            await keep(raw, "unmatched", callback)
            log.warning("callback %s without a reference kept as unmatched", callback.status)
            return JSONResponse(SUCCESS)
        signal = CallbackSignal(
            status_type=callback.status_type,
            status=callback.status,
            transaction_id=transaction.id or None,
            reference=reference,
            amount=transaction.amount,
            currency=transaction.currency_code,
            received_at=datetime.now(UTC),
        )
        handle = temporal.get_workflow_handle_for(DepositWorkflow.run, workflow_id(reference))
        try:
            await handle.signal(DepositWorkflow.callback, signal)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                log.error("callback for %s could not be signalled: %s", reference, err.status)
                return JSONResponse(
                    {"detail": "callback could not be delivered, retry later"},
                    status_code=503,
                )
            # The deposit is closed or was never started here: keep it, answer 200.
            await keep(raw, "closed_or_unknown", callback)
            log.info("callback %s for %s: deposit closed or unknown", callback.status, reference)
            return JSONResponse(SUCCESS)
        await keep(raw, "signalled", callback)
        log.info("callback %s for %s signalled", callback.status, reference)
        return JSONResponse(SUCCESS)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
