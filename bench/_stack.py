"""What every benchmark shares: the process stack, machine facts, percentiles, waits.

Every process listens on 127.0.0.1 on a port chosen here, and every load the
benchmarks generate goes only to those ports.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from deposits.client import DepositClient
from devstack import LocalStack, StackPorts
from webhook.server import callback_url
from worker.main import xprizo_client
from worker.temporal import connect

T = TypeVar("T")
PHONE = "0712345678"


def machine() -> str:
    """One line naming the machine: cores, memory, CPU model, Python."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        kib = int(info.readline().split()[1])
    return (
        f"nproc {os.cpu_count()}, {kib / 1024 / 1024:.1f} GiB memory, {model}, "
        f"Python {platform.python_version()}"
    )


def percentile(samples: Iterable[float], pct: int) -> float:
    """The pct-th percentile (inclusive method) of some samples."""
    values = sorted(samples)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def new_reference(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most ``limit`` at a time; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


def process_rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BenchStack(LocalStack):
    """The embedded stack as processes, with the simulator's decision delay settable."""

    callback_delay: float = 0.05

    def start_simulator(self) -> None:
        self._spawn(
            "simulator",
            self._cli(
                "simulator",
                "--port",
                str(self.ports.simulator),
                "--callback-delay",
                str(self.callback_delay),
            ),
        )
        from devstack.stack import _wait_for_port

        _wait_for_port(self.ports.simulator, "Xprizo simulator")

    def start_all(self, *, api: bool = False) -> None:
        """Temporal, simulator, receiver and worker (the API only when asked)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        try:
            self.start_temporal()
            self.start_simulator()
            self.start_webhook()
            if api:
                self.start_api()
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.simulator}"

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    async def register_webhook(self) -> None:
        """Tell the simulator where the receiver is, as register-webhook would."""
        settings = self.settings()
        async with xprizo_client(settings) as xprizo:
            await xprizo.set_approval_webhook(callback_url(settings))

    async def deposit_client(self) -> DepositClient:
        settings = self.settings()
        return DepositClient(await connect(settings), settings)

    def sim_get(self, path: str, **params: Any) -> Any:
        with httpx.Client(
            base_url=self.simulator_url, trust_env=False, timeout=60
        ) as http:
            answer = http.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def sim_script(self, reference: str, **scenario: Any) -> None:
        with httpx.Client(
            base_url=self.simulator_url, trust_env=False, timeout=30
        ) as http:
            http.put(f"/_sim/scenarios/{reference}", json=scenario).raise_for_status()


def bench_stack(
    prefix: str, overrides: dict[str, str] | None = None, callback_delay: float = 0.05
) -> BenchStack:
    """A stack on fresh random ports in a fresh temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    stack = BenchStack(
        data_dir=folder, ports=StackPorts.random(), overrides=dict(overrides or {})
    )
    stack.callback_delay = callback_delay
    return stack


def spawn_python(module: str, *args: str, env: dict[str, str] | None = None, log: Path):
    """A child ``python -m module`` with its output in ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def until(
    predicate: Callable[[], Awaitable[T]], what: str, timeout: float, every=0.2
) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(every)
    raise TimeoutError(f"{what} within {timeout}s")
