"""Log set-up shared by every process of the product: plain lines or JSON, redacted.

Whatever the format, every line passes one redaction last: M-Pesa numbers in any
accepted form are masked and the configured secrets are blanked, so a careless log call
elsewhere cannot leak them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from deposits.validation import mask_phone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# 07…/01…, 2547…/2541…, +2547…, with single spaces or dashes between digit groups.
_PHONE = re.compile(r"(?<![\d+])(?:\+?254[ -]?|0)[17]\d{2}[ -]?\d{3}[ -]?\d{3}(?!\d)")
_WORKFLOW_PREFIX = "deposit-"
_NOISY = ("httpx", "httpcore", "uvicorn.access", "alembic.runtime.plugins")


class Redactor:
    """Masks phone numbers and blanks known secret values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is blanked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class TextFormatter(logging.Formatter):
    """Timestamped plain lines, redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, reference and ids."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        reference = _reference_of(record)
        if reference is not None:
            entry["reference"] = reference
        for key in ("temporal_workflow", "temporal_activity"):
            details = getattr(record, key, None)
            if isinstance(details, dict):
                entry[key.removeprefix("temporal_")] = {
                    k: details[k]
                    for k in ("workflow_id", "run_id", "workflow_type", "activity_type")
                    if k in details
                }
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def _reference_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "reference", None)
    if explicit:
        return str(explicit)
    for key in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, key, None)
        workflow_id = details.get("workflow_id") if isinstance(details, dict) else None
        if isinstance(workflow_id, str) and workflow_id.startswith(_WORKFLOW_PREFIX):
            return workflow_id.removeprefix(_WORKFLOW_PREFIX)
    # The project's convention: "deposit %s: ..." with the reference first.
    if (
        isinstance(record.msg, str)
        and record.msg.startswith("deposit %s")
        and isinstance(record.args, tuple)
        and record.args
    ):
        return str(record.args[0])
    return None


def configure(
    level: str = "INFO",
    log_format: str | None = None,
    secrets: Iterable[str] | None = None,
) -> None:
    """Log to stderr in the settings' format, with secrets and phones redacted."""
    if log_format is None or secrets is None:
        from deposits.settings import get_settings

        settings = get_settings()
        log_format = log_format or settings.log_format
        if secrets is None:
            secrets = [
                settings.xprizo_api_key.get_secret_value(),
                settings.webhook_secret.get_secret_value(),
            ]
            for optional in (settings.api_token, settings.payload_codec_key):
                if optional is not None:
                    secrets.append(optional.get_secret_value())
    redact = Redactor(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(redact) if log_format == "json" else TextFormatter(redact)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
