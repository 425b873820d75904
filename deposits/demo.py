"""The main job: the embedded stack runs a deposit per kind of outcome, checks each."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from deposits.client import DepositClient, DepositView
from deposits.models import DecidedBy, Outcome
from devstack import LocalStack, StackPorts
from ledger import Ledger
from webhook.server import callback_url
from worker.main import xprizo_client

log = logging.getLogger(__name__)

DATA_DIR = Path("data") / "demo"
# Shortened waits so the whole demo takes about a minute; production uses the defaults.
DEMO_SETTINGS = {
    "DEPOSITS_POLL_SCHEDULE": "[[60, 3]]",
    "DEPOSITS_POLL_INTERVAL_AFTER_SECONDS": "5",
    "DEPOSITS_DEADLINE_SECONDS": "25",
    "DEPOSITS_NOT_FOUND_GRACE_SECONDS": "10",
}


@dataclass(frozen=True)
class DemoDeposit:
    """One demo deposit: the simulator's scenario word and what must come of it."""

    scenario: str
    description: str
    phone: str
    amount: str
    expected_outcome: Outcome
    expected_decided_by: DecidedBy


DEMO_DEPOSITS = (
    DemoDeposit(
        "approve", "Pass", "0712345678", "150", Outcome.APPROVED, DecidedBy.CALLBACK
    ),
    DemoDeposit(
        "cancel",
        "Cancel",
        "+254 722 000 111",
        "200",
        Outcome.CANCELLED,
        DecidedBy.CALLBACK,
    ),
    DemoDeposit(
        "lost-callback",
        "Silent",
        "0110 555 123",
        "75",
        Outcome.APPROVED,
        DecidedBy.POLL,
    ),
    DemoDeposit(
        "reject", "Reject", "254733444555", "300", Outcome.REJECTED, DecidedBy.CREATE
    ),
    DemoDeposit(
        "never-decided",
        "Pending",
        "0799 888 777",
        "50",
        Outcome.NEEDS_REVIEW,
        DecidedBy.DEADLINE,
    ),
)


@dataclass(frozen=True)
class DemoRun:
    deposit: DemoDeposit
    result: DepositView
    seconds: float

    @property
    def ok(self) -> bool:
        return (self.result.outcome, self.result.decided_by) == (
            self.deposit.expected_outcome,
            self.deposit.expected_decided_by,
        )


def run_demo(
    *,
    keep_running: bool = False,
    data_dir: Path = DATA_DIR,
    ports: StackPorts | None = None,
) -> int:
    """Run the demo; 0 only when every deposit ends as expected."""
    console = Console(width=150)
    stack = LocalStack(
        data_dir=data_dir, ports=ports or StackPorts(), overrides=DEMO_SETTINGS
    )
    console.print(f"starting the embedded stack (logs in {data_dir / 'logs'}) ...")
    try:
        stack.start()
    except RuntimeError as err:
        console.print(f"[red]cannot start the demo:[/red] {err}")
        return 2
    try:
        runs = asyncio.run(_run_deposits(stack))
        _print_report(console, stack, runs)
        ok = all(run.ok for run in runs)
        console.print(
            "all outcomes as expected" if ok else "[red]UNEXPECTED OUTCOMES[/red]"
        )
        if keep_running:
            console.print(
                f"stack left running; Temporal UI at {stack.ui_url}; Ctrl-C stops it"
            )
            _wait_for_interrupt()
        return 0 if ok else 1
    finally:
        stack.stop()


async def _run_deposits(stack: LocalStack) -> list[DemoRun]:
    settings = stack.settings()
    async with xprizo_client(settings) as xprizo:
        await xprizo.set_approval_webhook(callback_url(settings))
    client = await DepositClient.connect(settings)
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return await asyncio.gather(
        *(
            _run_one(client, deposit, f"demo-{run_id}-{deposit.scenario}")
            for deposit in DEMO_DEPOSITS
        )
    )


async def _run_one(
    client: DepositClient, deposit: DemoDeposit, reference: str
) -> DemoRun:
    started = time.monotonic()
    handle = await client.start(
        reference=reference,
        amount=deposit.amount,
        phone=deposit.phone,
        description=deposit.description,
    )
    view = await client.wait_for_outcome(
        handle.id.removeprefix("deposit-"), poll_every=0.2
    )
    return DemoRun(deposit, view, time.monotonic() - started)


def _print_report(console: Console, stack: LocalStack, runs: list[DemoRun]) -> None:
    table = Table(title="Demo deposits")
    for column in (
        "reference",
        "scenario",
        "outcome",
        "decided by",
        "seconds",
        "as expected",
    ):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.result.reference,
            run.deposit.description,
            run.result.outcome.value,
            run.result.decided_by.value,
            f"{run.seconds:.1f}",
            "yes" if run.ok else "[red]NO[/red]",
        )
    console.print(table)

    ledger = Ledger(stack.settings().ledger_url)
    references = {run.result.reference for run in runs}
    rows = Table(title="Ledger rows of this run")
    for column in (
        "reference",
        "outcome",
        "decided by",
        "amount",
        "phone",
        "Xprizo status",
        "reason",
    ):
        rows.add_column(column)
    for row in ledger.deposits():
        if row.reference in references:
            rows.add_row(
                row.reference,
                row.outcome,
                row.decided_by,
                f"{row.currency} {row.amount}",
                row.phone_masked,
                row.xprizo_status or "",
                row.reason or "",
            )
    ledger.close()
    console.print(rows)
    console.print(f"Temporal UI: {stack.ui_url}/namespaces/default/workflows")


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
