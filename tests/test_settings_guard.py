"""K10: settings that would point the embedded defaults at a real Xprizo are refused."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from deposits.settings import Settings

SANDBOX = "https://test.xprizo.com/api"


def test_k10_the_simulator_key_is_refused_for_xprizos_sandbox():
    with pytest.raises(ValidationError) as err:
        Settings(xprizo_base_url=SANDBOX)
    assert "DEPOSITS_XPRIZO_API_KEY" in str(err.value)


def test_k10_plain_http_is_refused_for_a_remote_xprizo():
    with pytest.raises(ValidationError) as err:
        Settings(
            xprizo_base_url="http://test.xprizo.com/api",
            xprizo_api_key=SecretStr("a-real-key-from-the-profile"),
        )
    assert "https" in str(err.value)


def test_k10_a_real_key_for_the_sandbox_is_accepted_and_never_shown():
    settings = Settings(
        xprizo_base_url=SANDBOX, xprizo_api_key=SecretStr("a-real-key-from-the-profile")
    )
    assert "a-real-key-from-the-profile" not in repr(settings)
    assert "a-real-key-from-the-profile" not in str(settings.model_dump())


def test_k10_the_local_simulator_keeps_the_embedded_defaults():
    assert Settings().xprizo_base_url.startswith("http://127.0.0.1")
