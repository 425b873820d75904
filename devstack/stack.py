"""Start and stop the embedded stack as child processes, for the demo and the tests.

Every process listens on 127.0.0.1 only. The dev server keeps its state in a SQLite file
in the data folder, so a restart on the same file keeps every deposit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from deposits import search_attributes
from deposits.settings import Settings
from worker.binaries import temporal_cli

log = logging.getLogger(__name__)

SEARCH_ATTRIBUTE_TYPES = {"KEYWORD": "Keyword", "INT": "Int", "DOUBLE": "Double"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def search_attribute_flags() -> list[str]:
    """``--search-attribute`` flags registering the project's attributes."""
    flags = []
    for key in search_attributes.ALL:
        kind = SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type.name]
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


@dataclass(frozen=True)
class StackPorts:
    """The ports one stack listens on."""

    temporal: int = 7233
    ui: int = 8233
    simulator: int = 8701
    webhook: int = 8702
    api: int = 8703
    codec: int = 8704

    @classmethod
    def random(cls) -> StackPorts:
        return cls(*(free_port() for _ in range(6)))


@dataclass
class LocalStack:
    """The processes of the embedded stack, sharing one data folder.

    With ``DEPOSITS_PAYLOAD_CODEC_KEY`` among the overrides (or the environment)
    payloads are encrypted, and the stack also runs the codec endpoint the UI decodes
    them through.
    """

    data_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    overrides: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The ``DEPOSITS_*`` settings every process of this stack shares."""
        env = {
            "DEPOSITS_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports.temporal}",
            "DEPOSITS_XPRIZO_BASE_URL": f"http://127.0.0.1:{self.ports.simulator}/api",
            "DEPOSITS_WEBHOOK_PORT": str(self.ports.webhook),
            "DEPOSITS_WEBHOOK_PUBLIC_URL": f"http://127.0.0.1:{self.ports.webhook}",
            "DEPOSITS_API_PORT": str(self.ports.api),
            "DEPOSITS_CODEC_SERVER_PORT": str(self.ports.codec),
            "DEPOSITS_CODEC_SERVER_CORS_ORIGINS": json.dumps(
                [
                    f"http://127.0.0.1:{self.ports.ui}",
                    f"http://localhost:{self.ports.ui}",
                ]
            ),
            "DEPOSITS_LEDGER_URL": f"sqlite:///{self.data_dir / 'ledger.sqlite3'}",
        }
        env.update(self.overrides)
        return env

    def settings(self) -> Settings:
        """Settings as the stack's processes see them."""
        saved = {k: os.environ.get(k) for k in self.env}
        try:
            os.environ.update(self.env)
            return Settings()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def codec_enabled(self) -> bool:
        """Whether this stack encrypts payloads (a codec key is set)."""
        key = self.settings().payload_codec_key
        return key is not None and bool(key.get_secret_value().strip())

    @property
    def codec_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.codec}"

    def start(self) -> None:
        """Start every process and wait until each one listens."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._check_ports_free()
        try:
            if self.codec_enabled:
                self.start_codec_server()
            self.start_temporal()
            self.start_simulator()
            self.start_webhook()
            self.start_api()
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    def _check_ports_free(self) -> None:
        """Refuse to start beside another stack: its worker would take our deposits."""
        busy = [
            f"{name} {port}"
            for name, port in vars(self.ports).items()
            if _port_in_use(port)
        ]
        if busy:
            raise RuntimeError(
                "ports already in use on 127.0.0.1 (" + ", ".join(busy) + "): is "
                "another stack running, e.g. `deposits demo --keep-running`? Stop it "
                "first."
            )

    def start_temporal(self) -> None:
        self._spawn(
            "temporal",
            [
                str(temporal_cli()),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.ports.temporal),
                "--ui-port",
                str(self.ports.ui),
                "--db-filename",
                str(self.data_dir / "temporal.sqlite3"),
                "--ui-disable-news-fetch",
                "--log-level",
                "warn",
                *search_attribute_flags(),
                *(
                    ["--ui-codec-endpoint", self.codec_url]
                    if self.codec_enabled
                    else []
                ),
            ],
        )
        _wait_for_port(self.ports.temporal, "Temporal dev server", timeout=60)

    def start_codec_server(self) -> None:
        self._spawn("codec", [sys.executable, "-m", "worker.codec_server"])
        _wait_for_port(self.ports.codec, "codec endpoint")

    def start_simulator(self) -> None:
        self._spawn(
            "simulator", self._cli("simulator", "--port", str(self.ports.simulator))
        )
        _wait_for_port(self.ports.simulator, "Xprizo simulator")

    def start_webhook(self) -> None:
        self._spawn("webhook", self._cli("webhook"))
        _wait_for_port(self.ports.webhook, "webhook receiver")

    def start_api(self) -> None:
        self._spawn("api", self._cli("api"))
        _wait_for_port(self.ports.api, "deposits API")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def start_worker(self) -> None:
        self._spawn("worker", self._cli("worker"))

    def stop_process(
        self, name: str, *, kill: bool = False, timeout: float = 30
    ) -> None:
        """Stop one process: SIGTERM to drain (SIGKILL when ``kill``), then wait."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %ss, killing it", name, timeout)
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop everything, the worker first so it drains while Temporal still runs."""
        for name in ("worker", "api", "webhook", "simulator", "temporal", "codec"):
            self.stop_process(name)

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "deposits.cli", *args]

    def _spawn(self, name: str, argv: list[str]) -> None:
        env = {**os.environ, **self.env}
        with open(self.log_path(name), "ab") as out:
            self.processes[name] = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1),
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")
