"""Serving an ASGI app on 127.0.0.1 inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn


@contextlib.asynccontextmanager
async def serve_in_loop(app) -> AsyncIterator[str]:
    """Serve ``app`` on a free local port while the block runs; yields its base URL."""
    sock = socket.socket()
    # Accepted sockets inherit this; without it Nagle holds the response body for the
    # client's delayed ACK, ~40 ms a request (uvicorn sets it only on its own sockets).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
