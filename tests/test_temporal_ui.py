"""The Temporal UI in a real headless Chromium: an operator finds a deposit by its
reference and reads it without seeing a phone number.

The stack runs as processes (devstack.LocalStack): dev server with its UI, simulator,
receiver, worker, and with the payload codec on, the codec endpoint the UI decodes
through. Chromium is Debian's (``apt-get install chromium``); Playwright only drives it.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import httpx
import pytest

from deposits.client import DepositClient
from deposits.models import DepositStatus
from devstack import LocalStack, StackPorts
from webhook.server import callback_url
from worker.codec import new_key
from worker.main import xprizo_client

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# The README's picture is refreshed only when asked (DEPOSITS_UPDATE_SCREENSHOT=1), so
# a test run leaves the work tree as it found it.
SCREENSHOT = (
    Path(__file__).resolve().parent.parent / "docs/images/temporal-ui-deposit.png"
    if os.environ.get("DEPOSITS_UPDATE_SCREENSHOT") == "1"
    else Path(tempfile.gettempdir()) / "temporal-ui-deposit.png"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_TYPED = "0712 345 678"
# Every unmasked form the number could take on a page.
UNMASKED = re.compile(r"(?:254|\b0)7\D?12\D?345\D?678")
MASKED = "2547******78"
UI_TIMEOUT_MS = 20_000

try:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None

if async_playwright is None:
    pytestmark = [
        pytestmark,
        pytest.mark.skip(reason="the playwright package is not installed"),
    ]
elif not CHROMIUM.is_file():
    pytestmark = [
        pytestmark,
        pytest.mark.skip(
            reason=f"{CHROMIUM} is missing: apt-get install chromium chromium-driver"
        ),
    ]


def start_stack(data_dir: Path, *, codec: bool) -> LocalStack:
    overrides = {
        # Long enough that the deposit is still pending while the browser reads it.
        "DEPOSITS_DEADLINE_SECONDS": "300",
        "DEPOSITS_POLL_SCHEDULE": "[[600, 2]]",
    }
    if codec:
        overrides["DEPOSITS_PAYLOAD_CODEC_KEY"] = new_key()
    stack = LocalStack(
        data_dir=data_dir, ports=StackPorts.random(), overrides=overrides
    )
    stack.start()
    return stack


@pytest.fixture(scope="module", params=["codec on", "codec off"])
def stack(request, tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("ui"), codec=request.param == "codec on"
    )
    try:
        yield stack
    finally:
        stack.stop()


async def page_text(page) -> tuple[str, str]:
    """The visible text and the HTML of the page and every frame in it."""
    texts, htmls = [], []
    for frame in page.frames:
        try:
            texts.append(await frame.inner_text("body"))
            htmls.append(await frame.content())
        except PlaywrightError:
            continue  # a frame that went away while being read
    return "\n".join(texts), "\n".join(htmls)


async def wait_for_text(page, *wanted: str) -> tuple[str, str]:
    """The page's text and HTML once every wanted text shows, in any frame."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while True:
        text, html = await page_text(page)
        missing = [w for w in wanted if w not in text]
        if not missing:
            return text, html
        assert time.monotonic() < deadline, f"the UI never showed {missing}"
        await page.wait_for_timeout(200)


def status_checks(stack: LocalStack, reference: str) -> list[dict]:
    """The status requests the simulator received for a reference."""
    response = httpx.get(f"http://127.0.0.1:{stack.ports.simulator}/_sim/requests")
    response.raise_for_status()
    return [
        r
        for r in response.json()
        if r.get("reference") == reference and "Status" in r["path"]
    ]


async def pending_deposit(stack: LocalStack) -> str:
    """Start a deposit the simulator never decides; wait until its poller runs."""
    settings = stack.settings()
    async with xprizo_client(settings) as xprizo:
        await xprizo.set_approval_webhook(callback_url(settings))
    client = await DepositClient.connect(settings)
    reference = f"ui-{uuid.uuid4().hex[:8]}"
    await client.start(
        reference=reference, amount="150", phone=PHONE_TYPED, description="Pending"
    )
    # The poller's first status check at the simulator: the deposit is now polling.
    deadline = time.monotonic() + 30
    while not status_checks(stack, reference):
        assert time.monotonic() < deadline, "the deposit never reached its first check"
        await asyncio.sleep(0.2)
    assert (await client.state(reference)).status == DepositStatus.PENDING
    return reference


async def test_ui_finds_a_deposit_by_reference_and_shows_it_without_the_phone(stack):
    codec_on = stack.codec_enabled
    reference = await pending_deposit(stack)
    decoded: list[int] = []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 820},
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on(
                "response",
                lambda r: decoded.append(r.status) if "/decode" in r.url else None,
            )

            # Find it: the list filtered by the DepositReference search attribute.
            query = urllib.parse.quote(f'DepositReference="{reference}"')
            await page.goto(
                f"{stack.ui_url}/namespaces/default/workflows?query={query}"
            )
            link = page.get_by_role("link", name=f"deposit-{reference}")
            await link.first.click()

            # Its input, as the UI shows it on the deposit's page.
            await page.get_by_text('"policy"').first.wait_for()
            detail_text, detail_html = await page_text(page)

            # Its summary, details and current details (the UI renders each in a
            # frame of its own).
            await page.get_by_text("User Metadata").click()
            summary = f"KES 150 from {MASKED} · ref {reference}"
            metadata_text, metadata_html = await wait_for_text(
                page, summary, "polling Xprizo"
            )
            if codec_on:
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT))
        finally:
            await browser.close()

    assert f"M-Pesa deposit of KES 150 from {MASKED}, reference {reference}" in (
        metadata_text
    )
    assert not UNMASKED.search(metadata_html)
    if codec_on:
        # Encrypted at rest; the UI decoded through the codec endpoint, which masks
        # the phone, so no page of the deposit shows the number.
        assert decoded and set(decoded) == {200}
        assert f'"phone": "{MASKED}"' in detail_text
        assert not UNMASKED.search(detail_html)
    else:
        # Without the codec the workflow input is stored and shown as sent: the
        # worker needs the full number for Xprizo. The codec is the fix.
        assert not decoded
        assert '"phone": "254712345678"' in detail_text
