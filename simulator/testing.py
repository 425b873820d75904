"""Helpers for tests that drive the simulator over real HTTP on 127.0.0.1."""

import asyncio
import json
import queue
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from simulator.app import create_app
from simulator.server import BackgroundServer
from xprizo.models import loads_json

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

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        # trust_env=False: control calls go to this local server, never a proxy.
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as http:
            response = http.request(method, path, **kwargs)
        response.raise_for_status()
        return loads_json(response.content) if response.content else None

    def script(self, reference: str, scenario: str = "pending", **knobs: Any) -> None:
        """Choose the scenario and fault knobs for a reference before it is created."""
        self._control(
            "PUT",
            f"/_sim/scenarios/{reference}",
            json={"scenario": scenario, **knobs},
        )

    def set_faults(self, **faults: Any) -> None:
        """Script endpoint-wide faults (errors, retry_after, slow); resets counters."""
        self._control("PUT", "/_sim/faults", json=faults)

    def clear_faults(self) -> None:
        """Remove every endpoint-wide fault."""
        self._control("DELETE", "/_sim/faults")

    def requests(
        self, reference: str | None = None, endpoint: str | None = None
    ) -> list[dict[str, Any]]:
        """The API requests received, optionally for one reference and endpoint."""
        params = {
            name: value
            for name, value in (("reference", reference), ("endpoint", endpoint))
            if value is not None
        }
        return self._control("GET", "/_sim/requests", params=params)

    def callbacks(self, reference: str | None = None) -> list[dict[str, Any]]:
        """The callbacks the simulator sent or tried to, optionally for a reference."""
        params = {} if reference is None else {"reference": reference}
        return self._control("GET", "/_sim/callbacks", params=params)

    def transaction(self, reference: str) -> dict[str, Any]:
        """The simulator's record of one transaction."""
        return self._control("GET", f"/_sim/transactions/{reference}")

    def decide(
        self, reference: str, status: str = "Active", callback: bool = True
    ) -> None:
        """Move a transaction to a final status now and, unless told not, call back."""
        self._control(
            "POST",
            f"/_sim/transactions/{reference}/decide",
            json={"status": status, "callback": callback},
        )

    def send_callback(
        self,
        reference: str,
        status_type: int = 2,
        *,
        null_transaction_fields: bool = False,
        copies: int = 1,
    ) -> None:
        """Post a callback for a transaction now without changing its status."""
        self._control(
            "POST",
            f"/_sim/transactions/{reference}/callback",
            json={
                "status_type": status_type,
                "null_transaction_fields": null_transaction_fields,
                "copies": copies,
            },
        )


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
