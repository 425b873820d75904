"""The public webhook URL and secret are checked before anything is registered (K10)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from deposits.settings import Settings
from webhook.server import (
    WebhookConfigError,
    callback_url,
    check_public_url,
    redacted_callback_url,
)

GOOD_SECRET = "Zq3" + "k" * 40


def settings(url: str, secret: str = GOOD_SECRET) -> Settings:
    return Settings(webhook_public_url=url, webhook_secret=SecretStr(secret))


@pytest.mark.parametrize(
    "url",
    [
        "https://pay.example.com",
        "https://pay.example.com/hooks/",
        "https://pay.example.com:8443",
        "http://127.0.0.1:8702",
        "http://localhost:8702",
        "http://[::1]:8702",
    ],
)
def test_https_or_a_local_http_url_is_accepted_k10(url):
    check_public_url(settings(url))
    assert callback_url(settings(url)).endswith(f"/xprizo/callback/{GOOD_SECRET}")


@pytest.mark.parametrize(
    ("url", "secret", "complaint"),
    [
        ("http://pay.example.com", GOOD_SECRET, "must use https"),
        (" https://pay.example.com", GOOD_SECRET, "whitespace"),
        ("https://pay.example.com\n", GOOD_SECRET, "whitespace"),
        ("https://pay.example .com", GOOD_SECRET, "whitespace"),
        ("pay.example.com", GOOD_SECRET, "absolute http(s) URL"),
        ("ftp://pay.example.com", GOOD_SECRET, "absolute http(s) URL"),
        ("https://pay.example.com/?x=1", GOOD_SECRET, "without query"),
        ("https://user:pw@pay.example.com", GOOD_SECRET, "credentials"),
        ("https://pay.example.com", "short", "at least 32"),
        ("https://pay.example.com", "s" * 40 + "/x", "only letters"),
        (
            "https://pay.example.com",
            Settings.model_fields["webhook_secret"].default.get_secret_value(),
            "development default",
        ),
    ],
)
def test_a_url_or_secret_xprizo_must_not_get_is_refused_clearly_k10(
    url, secret, complaint
):
    with pytest.raises(WebhookConfigError) as refused:
        check_public_url(settings(url, secret))
    assert complaint in str(refused.value)
    assert secret not in str(refused.value) or len(secret) < 8


def test_the_redacted_url_never_shows_the_secret_k10():
    shown = redacted_callback_url(settings("https://pay.example.com/"))
    assert shown == "https://pay.example.com/xprizo/callback/<secret>"
    assert GOOD_SECRET not in shown
