"""Running one of the product's HTTP apps under uvicorn, the same way for each."""

from __future__ import annotations

import logging

import uvicorn

log = logging.getLogger(__name__)


async def serve_app(
    app, *, host: str, port: int, what: str, grace_seconds: float = 10
) -> None:
    """Serve until SIGTERM/SIGINT; requests in flight get the grace to finish."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=grace_seconds,
    )
    log.info("%s on %s:%s", what, host, port)
    await uvicorn.Server(config).serve()
