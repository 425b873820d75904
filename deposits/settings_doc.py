"""The README's settings table, generated from the settings model so it stays true.

``python -m deposits.settings_doc`` prints the table; ``--write`` puts it into README.md
between its markers. A test fails when the README and the model disagree.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from deposits.settings import Settings

START = "<!-- settings-table:start (python -m deposits.settings_doc --write) -->"
END = "<!-- settings-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"

WHAT = {
    "temporal_address": "Temporal frontend, host:port",
    "temporal_namespace": "Temporal namespace of every deposit",
    "task_queue": "task queue the worker polls and deposits start on",
    "worker_shutdown_grace_seconds": "on SIGTERM, how long running activities may "
    "finish before they are cancelled",
    "xprizo_base_url": "Xprizo API base URL (the simulator by default)",
    "xprizo_api_key": "Xprizo API key (secret)",
    "xprizo_account_id": "the merchant's Xprizo account id",
    "xprizo_status_path": "status endpoint path; `{account_id}` is filled in, "
    "else the id is appended",
    "xprizo_timeout_seconds": "timeout of one Xprizo call",
    "webhook_host": "address the webhook receiver listens on",
    "webhook_port": "port the webhook receiver listens on",
    "webhook_secret": "secret path segment of the callback URL (secret)",
    "webhook_public_url": "the receiver's URL as Xprizo reaches it",
    "webhook_max_body_bytes": "largest callback body accepted",
    "webhook_signal_timeout_seconds": "the receiver's signal to Temporal; past "
    "it Xprizo hears 503 and retries",
    "api_host": "address the deposits HTTP API listens on",
    "api_port": "port the deposits HTTP API listens on",
    "api_token": "bearer token every /deposits call needs when set (secret)",
    "ledger_url": "SQLAlchemy URL of the ledger: SQLite file or "
    "`postgresql+psycopg://…`",
    "log_format": "`text` or `json` (one object a line)",
    "metrics_address": "host:port of the worker's Prometheus endpoint; empty: off",
    "tracing_enabled": "OpenTelemetry tracing through Temporal's plugin",
    "tracing_otlp_endpoint": "OTLP/HTTP traces endpoint, when tracing is on",
    "service_name": "service name on metrics and spans",
    "payload_codec_key": "base64 of a 32-byte AES-GCM key: Temporal payloads are "
    "encrypted; unset: plain (secret)",
    "codec_server_host": "address the payload codec endpoint listens on",
    "codec_server_port": "port of the payload codec endpoint the Temporal UI and CLI "
    "decode through",
    "codec_server_cors_origins": "browser origins (the Temporal UI) allowed to call "
    "the codec endpoint",
    "currency": "currency of every deposit",
    "amount_minimum": "smallest amount accepted",
    "amount_maximum": "largest amount accepted",
    "allow_fractional_amounts": "accept cents (Xprizo's M-Pesa takes whole KES)",
    "deadline_seconds": "after this, one last status check, then needs_review",
    "not_found_grace_seconds": 'how long NotFound just after a create means "not yet"',
    "poll_schedule": "status checks without callbacks: `[until, every]` seconds "
    "since the create",
    "poll_interval_after_seconds": "status check interval after the schedule ends",
    "review_window_seconds": "how long a needs_review deposit stays open for an "
    "operator",
}


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "dev-only value: set it"
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    return json.dumps(value)


def settings_table() -> str:
    """Markdown rows: variable, default, what it is; one per settings field."""
    rows = ["| variable | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _default(field.default).replace("|", "\\|")
        rows.append(f"| `DEPOSITS_{name.upper()}` | `{default}` | {WHAT[name]} |")
    return "\n".join(rows)


def readme_table(text: str) -> str:
    """The table currently between the README's markers."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write(readme: Path = README) -> None:
    """Replace the README's table with the generated one."""
    text = readme.read_text()
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{settings_table()}\n{END}{after}")


if __name__ == "__main__":  # pragma: no cover - maintainer command
    if "--write" in sys.argv:
        write()
    else:
        print(settings_table())
