"""Run the simulator: blocking under uvicorn, or in a background thread for tests."""

import socket
import threading
import time
from typing import Any, Self

import uvicorn

from simulator.app import create_app

__all__ = ["BackgroundServer", "serve"]


def serve(
    *, host: str, port: int, api_key: str, account_id: int, callback_delay: float
) -> None:
    """Run the simulator under uvicorn until interrupted."""
    app = create_app(
        api_key=api_key, account_id=account_id, callback_delay=callback_delay
    )
    # No access log: SetApprovalWebhook's query string carries the webhook secret.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted sockets: no Nagle wait on the client's delayed ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, 0))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        # A bounded graceful shutdown: a scripted hang must not hold up stop().
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("background server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
