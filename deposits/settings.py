"""Every setting of the product, read from the environment (prefix ``DEPOSITS_``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deposits.models import DepositPolicy, PollStep

# The embedded defaults point at the local simulator and never reach a real Xprizo.
DEFAULT_DATA_DIR = Path("data")
SIMULATOR_API_KEY = "simulator-api-key"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """The one settings model; each field is ``DEPOSITS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="DEPOSITS_", env_file=None, extra="ignore", frozen=True
    )

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "mpesa-deposits"
    worker_shutdown_grace_seconds: float = 20.0

    # Xprizo
    xprizo_base_url: str = "http://127.0.0.1:8701/api"
    xprizo_api_key: SecretStr = SecretStr(SIMULATOR_API_KEY)
    xprizo_account_id: int = 1001
    xprizo_status_path: str = "Transaction/StatusByReference"
    xprizo_timeout_seconds: float = 15.0

    # Webhook receiver
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8702
    webhook_secret: SecretStr = SecretStr(
        "dev-only-webhook-secret-change-me-0123456789"
    )
    webhook_public_url: str = "http://127.0.0.1:8702"
    webhook_max_body_bytes: int = 64 * 1024
    # The signal is the receiver's only inline call; past this Xprizo hears 503.
    webhook_signal_timeout_seconds: float = 5.0

    # Deposits HTTP API (internal, for the merchant's services)
    api_host: str = "127.0.0.1"
    api_port: int = 8703
    # When set, every /deposits call needs "Authorization: Bearer <token>".
    api_token: SecretStr | None = None

    # Ledger
    ledger_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'ledger.sqlite3'}"

    # Observability
    log_format: Literal["text", "json"] = "text"
    # host:port of the worker's Prometheus endpoint (SDK and deposit metrics); "": off.
    metrics_address: str = ""
    tracing_enabled: bool = False
    tracing_otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "mpesa-deposits"

    # Payload encryption: base64 of 32 bytes for AES-256-GCM; unset, payloads are plain.
    payload_codec_key: SecretStr | None = None
    # The codec endpoint the Temporal UI and CLI decode payloads through (local only).
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8704
    codec_server_cors_origins: list[str] = Field(
        default=["http://127.0.0.1:8233", "http://localhost:8233"]
    )

    # Deposit rules
    currency: str = "KES"
    amount_minimum: Decimal = Decimal("1")
    amount_maximum: Decimal = Decimal("250000")
    allow_fractional_amounts: bool = False

    # Waiting for the outcome
    deadline_seconds: float = 3600.0
    not_found_grace_seconds: float = 120.0
    # Status checks without callbacks: (until N seconds after create, every M seconds).
    poll_schedule: list[tuple[float, float]] = Field(
        default=[(60, 15), (300, 30), (600, 60)]
    )
    poll_interval_after_seconds: float = 300.0
    # How long a needs_review deposit waits open for an operator's resolution.
    review_window_seconds: float = 30 * 24 * 3600.0

    @model_validator(mode="after")
    def _a_real_xprizo_needs_real_settings(self) -> Settings:
        """Refuse settings that would send the embedded defaults to a real Xprizo."""
        url = urlsplit(self.xprizo_base_url.strip())
        if url.hostname in LOCAL_HOSTS:
            return self
        if url.scheme != "https":
            raise ValueError(
                f"xprizo_base_url must use https for {url.hostname} (plain http is "
                "accepted only for the local simulator on 127.0.0.1/localhost)"
            )
        if self.xprizo_api_key.get_secret_value() == SIMULATOR_API_KEY:
            raise ValueError(
                "xprizo_api_key is still the simulator's default while "
                f"xprizo_base_url points at {url.hostname}: set "
                "DEPOSITS_XPRIZO_API_KEY to the processing profile's key"
            )
        return self

    def deposit_policy(self) -> DepositPolicy:
        """The waiting rules a new deposit carries for its whole life."""
        return DepositPolicy(
            deadline=timedelta(seconds=self.deadline_seconds),
            not_found_grace=timedelta(seconds=self.not_found_grace_seconds),
            poll_steps=[
                PollStep(until=timedelta(seconds=until), every=timedelta(seconds=every))
                for until, every in self.poll_schedule
            ],
            poll_every_after=timedelta(seconds=self.poll_interval_after_seconds),
            review_window=timedelta(seconds=self.review_window_seconds),
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
