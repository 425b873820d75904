"""Helpers for tests that drive the simulator over real HTTP on 127.0.0.1."""

import asyncio
import json
import queue
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response

from simulator.app import create_app
from simulator.server import BackgroundServer

__all__ = ["CallbackRecorder", "RunningSimulator"]


class RunningSimulator(BackgroundServer):
    """A simulator app served in a background thread on a free local port."""

    def __init__(
        self, *, api_key: str, account_id: int, callback_delay: float = 0.2
    ) -> None:
        super().__init__(
            create_app(
                api_key=api_key, account_id=account_id, callback_delay=callback_delay
            )
        )
        self.api_key = api_key
        self.account_id = account_id

    @property
    def api_url(self) -> str:
        """The base URL an Xprizo client is given."""
        return self.url + "/api"


class CallbackRecorder(BackgroundServer):
    """A webhook receiver that answers 200 and keeps every callback body it gets."""

    def __init__(self) -> None:
        self._bodies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/callback")
        async def callback(request: Request) -> Response:
            self._bodies.put(json.loads(await request.body(), parse_float=Decimal))
            return Response('{"status":"success"}', media_type="application/json")

        super().__init__(app)

    @property
    def callback_url(self) -> str:
        """The URL to register as the approval webhook."""
        return self.url + "/callback"

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Return the first callback, seen or arriving, that satisfies the predicate."""
        for body in self.received:
            if predicate(body):
                return body
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching callback arrived")
            try:
                body = await asyncio.to_thread(
                    self._bodies.get, timeout=min(remaining, 0.5)
                )
            except queue.Empty:
                continue
            self.received.append(body)
            if predicate(body):
                return body

    def drain(self) -> list[dict[str, Any]]:
        """Move every callback that has arrived into `received` and return them all."""
        while True:
            try:
                self.received.append(self._bodies.get_nowait())
            except queue.Empty:
                return self.received
