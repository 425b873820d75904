"""Run the deposits HTTP API under uvicorn, connected to Temporal."""

from __future__ import annotations

from deposits.client import DepositClient
from deposits.http_serving import serve_app
from deposits.settings import Settings
from deposits_api.app import create_app


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn finishes requests in flight first."""
    deposits = await DepositClient.connect(settings)
    app = create_app(settings, deposits)
    token = "token required" if settings.api_token else "no token"
    await serve_app(
        app,
        host=settings.api_host,
        port=settings.api_port,
        what=f"deposits API ({token})",
    )
