"""Run the webhook receiver under uvicorn, connected to Temporal and the ledger."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from deposits.http_serving import serve_app
from deposits.settings import LOCAL_HOSTS, Settings
from ledger import Ledger
from webhook.app import create_app
from worker.temporal import connect

MIN_SECRET_LENGTH = 32
# The secret is one path segment: only characters that never need escaping.
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_~.-]+")
DEV_SECRET = Settings.model_fields["webhook_secret"].default.get_secret_value()


class WebhookConfigError(ValueError):
    """The public webhook URL or the secret cannot be registered with Xprizo."""


def check_public_url(settings: Settings) -> None:
    """Refuse a public URL or secret Xprizo must not be given, saying what is wrong.

    The rules: no whitespace anywhere, https unless the host is this machine, a plain
    base URL (no query, fragment or credentials), and a secret of at least 32 URL-safe
    characters that is not the development default on a public host.
    """
    url = settings.webhook_public_url
    name = "DEPOSITS_WEBHOOK_PUBLIC_URL"
    if url != url.strip() or any(ch.isspace() for ch in url):
        raise WebhookConfigError(f"{name} contains whitespace: {url!r}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookConfigError(
            f"{name} must be an absolute http(s) URL like https://pay.example.com, "
            f"got {url!r}"
        )
    local = host in LOCAL_HOSTS
    if parts.scheme != "https" and not local:
        raise WebhookConfigError(
            f"{name} must use https for a public host ({host}); plain http is allowed "
            "only for 127.0.0.1 and localhost"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise WebhookConfigError(
            f"{name} must be a plain base URL without query, fragment or credentials"
        )
    secret = settings.webhook_secret.get_secret_value()
    if len(secret) < MIN_SECRET_LENGTH:
        raise WebhookConfigError(
            f"DEPOSITS_WEBHOOK_SECRET is {len(secret)} characters; it needs at least "
            f"{MIN_SECRET_LENGTH} (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    if not SECRET_SHAPE.fullmatch(secret):
        raise WebhookConfigError(
            "DEPOSITS_WEBHOOK_SECRET may hold only letters, digits and - _ . ~ "
            "(it is a URL path segment)"
        )
    if not local and secret == DEV_SECRET:
        raise WebhookConfigError(
            "DEPOSITS_WEBHOOK_SECRET is still the development default; set a random "
            "one before registering a public URL"
        )


def callback_url(settings: Settings) -> str:
    """The URL Xprizo must call, secret included: never log it."""
    check_public_url(settings)
    base = settings.webhook_public_url.rstrip("/")
    return f"{base}/xprizo/callback/{settings.webhook_secret.get_secret_value()}"


def redacted_callback_url(settings: Settings) -> str:
    """The callback URL with the secret hidden, for logs and terminals."""
    return f"{settings.webhook_public_url.rstrip('/')}/xprizo/callback/<secret>"


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn finishes requests in flight first."""
    check_public_url(settings)
    temporal = await connect(settings)
    ledger = Ledger(settings.ledger_url)
    await asyncio.to_thread(ledger.create_schema)
    app = create_app(settings, temporal, ledger)
    await serve_app(
        app,
        host=settings.webhook_host,
        port=settings.webhook_port,
        what=f"webhook receiver for {redacted_callback_url(settings)}",
    )
    ledger.close()
