"""Run the deposits HTTP API under uvicorn, connected to Temporal."""

from __future__ import annotations

import logging

import uvicorn

from deposits.client import DepositClient
from deposits.settings import Settings
from deposits_api.app import create_app

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn finishes requests in flight first."""
    deposits = await DepositClient.connect(settings)
    app = create_app(settings, deposits)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    log.info(
        "deposits API on %s:%s (%s)",
        settings.api_host,
        settings.api_port,
        "token required" if settings.api_token else "no token",
    )
    await uvicorn.Server(config).serve()
