"""The ``deposits`` command: run the parts of the stack, start and inspect deposits.

Exit codes: 0 success (``watch``: the deposit was approved), 1 an error (unreachable
Temporal or Xprizo, unknown reference), 2 invalid input or configuration, 3 ``watch``:
the deposit ended without approval.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from deposits.logs import configure
from deposits.models import DepositStatus, Outcome
from deposits.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__.split("\n\n")[0],
    epilog=" ".join(__doc__.split("\n\n")[1].split()),
)

T = TypeVar("T")
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_NOT_APPROVED = 3


@app.callback()
def _main(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
):
    configure(log_level.upper())


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _run(go: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine, turning the usual failures into one line and an exit code."""
    from temporalio.service import RPCError

    from deposits.client import (
        DepositConflictError,
        DepositNotFoundError,
        DepositValidationError,
    )
    from webhook.server import WebhookConfigError
    from xprizo import XprizoError

    settings = get_settings()
    try:
        return asyncio.run(go())
    except (DepositValidationError, WebhookConfigError) as err:
        raise _fail(str(err), EXIT_INVALID) from None
    except DepositConflictError as err:
        raise _fail(str(err), EXIT_INVALID) from None
    except DepositNotFoundError as err:
        raise _fail(str(err)) from None
    except XprizoError as err:
        raise _fail(f"Xprizo: {err}") from None
    except RPCError as err:
        raise _fail(f"Temporal at {settings.temporal_address}: {err}") from None
    except RuntimeError as err:
        # Client.connect reports an unreachable server as a RuntimeError.
        if "connect" not in str(err).lower():
            raise
        typer.echo(
            f"error: cannot reach Temporal at {settings.temporal_address}", err=True
        )
        sys.stdout.flush()
        sys.stderr.flush()
        # The SDK's native thread from the failed connect can abort the interpreter
        # while it finalizes (SIGABRT, exit 134); leave before finalization.
        os._exit(EXIT_ERROR)


@app.command()
def demo(
    keep_running: Annotated[
        bool, typer.Option(help="leave the stack running for the operator recipes")
    ] = False,
) -> None:
    """Run the main job: the embedded stack and one deposit per kind of outcome."""
    from deposits.demo import run_demo

    raise typer.Exit(run_demo(keep_running=keep_running))


@app.command()
def worker() -> None:
    """Run a worker until SIGTERM or SIGINT."""
    from worker.main import run_worker

    asyncio.run(run_worker(get_settings()))


@app.command()
def webhook() -> None:
    """Run the webhook receiver until SIGTERM or SIGINT."""
    from webhook.server import serve

    _run(lambda: serve(get_settings()))


@app.command()
def api() -> None:
    """Run the deposits HTTP API until SIGTERM or SIGINT."""
    from deposits_api.server import serve

    _run(lambda: serve(get_settings()))


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8701,
    callback_delay: Annotated[float, typer.Option(help="seconds to a decision")] = 2.0,
) -> None:
    """Run the Xprizo simulator with the settings' API key and account id."""
    from simulator.server import serve

    settings = get_settings()
    serve(
        host="127.0.0.1",
        port=port,
        api_key=settings.xprizo_api_key.get_secret_value(),
        account_id=settings.xprizo_account_id,
        callback_delay=callback_delay,
    )


@app.command()
def start(
    reference: Annotated[str, typer.Option(help="unique merchant reference")],
    amount: Annotated[str, typer.Option(help="amount in KES, e.g. 100")],
    phone: Annotated[str, typer.Option(help="payer's M-Pesa number, e.g. 0712345678")],
    description: Annotated[str | None, typer.Option()] = None,
    wait: Annotated[bool, typer.Option(help="wait for the outcome")] = False,
) -> None:
    """Start a deposit (idempotent by reference); with --wait, print its outcome."""
    from deposits.client import DepositClient

    async def go() -> str:
        client = await DepositClient.connect(get_settings())
        started = await client.start_deposit(
            reference=reference, amount=amount, phone=phone, description=description
        )
        if wait:
            outcome = await client.wait_for_outcome(reference)
            return outcome.model_dump_json(indent=2)
        return json.dumps(
            {
                "reference": reference,
                "workflow_id": started.handle.id,
                "created": started.created,
            }
        )

    typer.echo(_run(go))


@app.command()
def status(reference: str) -> None:
    """Print a deposit's state, outcome and timestamps as JSON."""
    from deposits.client import DepositClient

    async def go() -> str:
        client = await DepositClient.connect(get_settings())
        return (await client.view(reference)).model_dump_json(indent=2)

    typer.echo(_run(go))


@app.command("list")
def list_deposits(
    status: Annotated[
        DepositStatus | None, typer.Option(help="only deposits in this status")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="only deposits started since, e.g. 2025-01-31T00:00Z"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List deposits, newest first, from Temporal's visibility."""
    from rich.console import Console
    from rich.table import Table

    from deposits.client import DepositClient

    started_since = _parse_since(since) if since else None

    async def go():
        client = await DepositClient.connect(get_settings())
        return await client.list(status=status, since=started_since, limit=limit)

    page = _run(go)
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    table = Table(title=f"{len(page.deposits)} deposits")
    for column in ("reference", "status", "amount", "workflow", "started", "closed"):
        table.add_column(column)
    for item in page.deposits:
        table.add_row(
            item.reference,
            item.status,
            "" if item.amount is None else str(item.amount),
            item.workflow_status,
            _when(item.started_at),
            _when(item.closed_at),
        )
    Console().print(table)


@app.command()
def watch(
    reference: str,
    interval: Annotated[float, typer.Option(help="seconds between reads")] = 1.0,
    timeout: Annotated[
        float | None, typer.Option(help="give up after this many seconds")
    ] = None,
) -> None:
    """Show one deposit live until it has its outcome (exit 0 only if approved)."""
    from rich.console import Console
    from rich.live import Live

    from deposits.client import DepositClient, DepositView

    console = Console()

    async def go() -> DepositView:
        client = await DepositClient.connect(get_settings())
        view = await client.view(reference)
        began = time.monotonic()
        with Live(_view_table(view), console=console, auto_refresh=False) as live:
            while not view.ended:
                if timeout is not None and time.monotonic() - began > timeout:
                    break
                await asyncio.sleep(interval)
                view = await client.view(reference)
                live.update(_view_table(view), refresh=True)
        return view

    final = _run(go)
    if not final.ended:
        raise _fail(f"deposit {reference} still {final.status.value} after {timeout}s")
    raise typer.Exit(0 if final.outcome == Outcome.APPROVED else EXIT_NOT_APPROVED)


@app.command("register-webhook")
def register_webhook(
    test: Annotated[
        bool, typer.Option(help="fire Xprizo's test call after registering")
    ] = True,
) -> None:
    """Check the public callback URL, register it with Xprizo, confirm, test it."""
    from webhook.server import callback_url, redacted_callback_url
    from worker.main import xprizo_client

    settings = get_settings()

    async def go() -> list[str]:
        url = callback_url(settings)  # refuses a URL Xprizo must not be given
        said = []
        async with xprizo_client(settings) as xprizo:
            await xprizo.set_approval_webhook(url)
            said.append(f"registered {redacted_callback_url(settings)}")
            current = (await xprizo.get_preference()).approval_webhook
            if current != url:
                raise _fail(
                    "Xprizo reports a different approval webhook after registering; "
                    "check the processing profile"
                )
            said.append("confirmed: Xprizo's preference holds the same URL")
            if test:
                await xprizo.test_approval_webhook()
                said.append(
                    "test call fired: the receiver keeps it in the ledger's callbacks "
                    "as no_decision (status type 0)"
                )
        return said

    for line in _run(go):
        typer.echo(line)


@app.command("test-webhook")
def test_webhook() -> None:
    """Ask Xprizo to send a test call to the registered approval webhook."""
    from worker.main import xprizo_client

    async def go() -> None:
        async with xprizo_client(get_settings()) as xprizo:
            await xprizo.test_approval_webhook()

    _run(go)
    typer.echo("test call fired")


def _parse_since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--since {text!r} is not an ISO-8601 time", EXIT_INVALID) from None
    if value.tzinfo is None:
        raise _fail("--since needs a timezone, e.g. 2025-01-31T00:00Z", EXIT_INVALID)
    return value


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _view_table(view):
    from rich.table import Table

    table = Table(title=f"deposit {view.reference}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    style = {
        Outcome.APPROVED: "green",
        Outcome.CANCELLED: "red",
        Outcome.REJECTED: "red",
        Outcome.NEEDS_REVIEW: "yellow",
    }.get(view.outcome, "cyan")
    rows = [
        ("status", f"[{style}]{view.status.value}[/{style}]"),
        ("outcome", view.outcome.value if view.outcome else "-"),
        ("decided by", view.decided_by.value if view.decided_by else "-"),
        ("reason", view.reason or "-"),
        ("amount", f"{view.currency} {view.amount}"),
        ("phone", view.phone_masked),
        ("Xprizo transaction", str(view.transaction_id or "-")),
        ("last Xprizo status", view.last_xprizo_status or "-"),
        ("callbacks", _count(view.callbacks_received)),
        ("status checks", _count(view.status_checks)),
        ("started", _when(view.started_at)),
        ("deadline", _when(view.deadline_at)),
        ("finished", _when(view.finished_at)),
        ("workflow", view.workflow_status),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


# Short-lived commands that only talk to Temporal or Xprizo.
CLIENT_COMMANDS = frozenset(
    {"start", "status", "list", "watch", "register-webhook", "test-webhook"}
)


def main() -> None:
    """The console entry point."""
    names = CLIENT_COMMANDS | {"demo", "worker", "webhook", "api", "simulator"}
    command = next((arg for arg in sys.argv[1:] if arg in names), None)
    if command not in CLIENT_COMMANDS:
        app()
        return
    try:
        app()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's native threads can abort the interpreter while it finalizes
    # (SIGABRT, exit 134, seen after a refused connect); these commands have nothing
    # left to clean up, so they leave before finalization with their own exit code.
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
