"""Run the webhook receiver under uvicorn, connected to Temporal and the ledger."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from deposits.settings import Settings
from ledger import Ledger
from webhook.app import create_app
from worker.temporal import connect

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn finishes requests in flight first."""
    temporal = await connect(settings)
    ledger = Ledger(settings.ledger_url)
    await asyncio.to_thread(ledger.create_schema)
    app = create_app(settings, temporal, ledger)
    config = uvicorn.Config(
        app,
        host=settings.webhook_host,
        port=settings.webhook_port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    log.info("webhook receiver on %s:%s", settings.webhook_host, settings.webhook_port)
    await uvicorn.Server(config).serve()
    ledger.close()


def callback_url(settings: Settings) -> str:
    """The URL Xprizo must call, secret included: never log it."""
    base = settings.webhook_public_url.rstrip("/")
    return f"{base}/xprizo/callback/{settings.webhook_secret.get_secret_value()}"
