"""The ``deposits`` command: run the parts of the stack, start and inspect deposits."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from deposits.logs import configure
from deposits.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO"):
    configure(log_level.upper())


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

    asyncio.run(serve(get_settings()))


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
    """Start a deposit; print its workflow id, or its outcome with --wait."""
    from deposits.client import DepositClient, DepositConflictError

    async def go() -> int:
        client = await DepositClient.connect(get_settings())
        try:
            handle = await client.start(
                reference=reference, amount=amount, phone=phone, description=description
            )
        except (ValueError, DepositConflictError) as err:
            typer.echo(f"error: {err}", err=True)
            return 2
        if not wait:
            typer.echo(json.dumps({"workflow_id": handle.id, "reference": reference}))
            return 0
        result = await handle.result()
        typer.echo(result.model_dump_json(indent=2))
        return 0

    raise typer.Exit(asyncio.run(go()))


@app.command()
def status(reference: str) -> None:
    """Print a deposit's current state."""
    from deposits.client import DepositClient

    async def go() -> None:
        client = await DepositClient.connect(get_settings())
        typer.echo((await client.state(reference)).model_dump_json(indent=2))

    asyncio.run(go())


@app.command("register-webhook")
def register_webhook() -> None:
    """Register the configured callback URL with Xprizo and fire its test call."""
    from webhook.server import callback_url
    from worker.main import xprizo_client

    async def go() -> None:
        settings = get_settings()
        async with xprizo_client(settings) as xprizo:
            await xprizo.set_approval_webhook(callback_url(settings))
            await xprizo.test_approval_webhook()
        typer.echo(f"registered {settings.webhook_public_url.rstrip('/')}/xprizo/callback/…")

    asyncio.run(go())


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":
    sys.exit(app())
