"""Xprizo's messages as pydantic models, translated once into the project's words."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CALLBACK_ACCEPTED",
    "CALLBACK_CANCELLED",
    "CALLBACK_NEW",
    "CALLBACK_NONE",
    "CALLBACK_REJECTED",
    "Callback",
    "CallbackTransaction",
    "CallbackType",
    "CreatedDeposit",
    "Preference",
    "StatusReport",
    "loads_json",
]


class CallbackType(IntEnum):
    """The `statusType` of an approval callback."""

    NONE = 0
    NEW = 1
    ACCEPTED = 2
    REJECTED = 3
    CANCELLED = 4


CALLBACK_NONE = CallbackType.NONE
CALLBACK_NEW = CallbackType.NEW
CALLBACK_ACCEPTED = CallbackType.ACCEPTED
CALLBACK_REJECTED = CallbackType.REJECTED
CALLBACK_CANCELLED = CallbackType.CANCELLED
# The callbacks that say Xprizo decided; "none" (a test call) and "new" decide nothing.
DECISIVE_CALLBACK_TYPES = frozenset(
    {CallbackType.ACCEPTED, CallbackType.REJECTED, CallbackType.CANCELLED}
)


def loads_json(body: bytes | str) -> Any:
    """Parse JSON with every fractional number as a Decimal, never a float."""
    return json.loads(body, parse_float=Decimal)


def _optional_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


# Xprizo's ids are 64-bit; a status word is a short word. Anything beyond is junk that
# must not reach a log line, the ledger's columns or a workflow's history whole.
MAX_TRANSACTION_ID = 2**63 - 1
MAX_STATUS_WORD = 32
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def transaction_id_or_none(value: int | None) -> int | None:
    """A plausible Xprizo transaction id, or None (0, negative, huge: none)."""
    if value is None or not 0 < value <= MAX_TRANSACTION_ID:
        return None
    return value


def status_word(value: str) -> str:
    """A status word made safe to keep: printable ASCII, at most 32 characters."""
    return _UNPRINTABLE.sub("?", value.strip())[:MAX_STATUS_WORD]


class CreatedDeposit(BaseModel):
    """Xprizo's answer to a create: a pending transaction, or one adopted by reference.

    `already_existed` is true when Xprizo said a transaction with this reference already
    exists; the transaction id is then unknown until a status check.
    """

    model_config = ConfigDict(frozen=True)

    transaction_id: int | None
    status: str
    status_code: int | None
    message: str | None
    already_existed: bool = False

    @classmethod
    def from_response(cls, data: Any) -> "CreatedDeposit":
        """Build from Xprizo's `{key, statusCode, status, value}` response body."""
        if not isinstance(data, dict):
            raise ValueError("create response is not a JSON object")
        status = data.get("status")
        if not isinstance(status, str) or not status.strip():
            raise ValueError("create response has no status")
        value = data.get("value")
        return cls(
            transaction_id=transaction_id_or_none(_optional_int(data.get("key"))),
            status=status_word(status),
            status_code=_optional_int(data.get("statusCode")),
            message=None if value is None else str(value),
        )


class StatusReport(BaseModel):
    """Xprizo's answer to a status check by reference.

    Xprizo answers `{id, description}`, `description` being the status word; `id` 0 (an
    unknown reference) becomes None. Amount, currency and reference are kept when
    Xprizo includes them, so approval can check them against the request.
    """

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    transaction_id: int | None = Field(alias="id")
    status: str = Field(alias="description")
    amount: Decimal | None = None
    currency: str | None = Field(default=None, alias="currencyCode")
    reference: str | None = None

    @field_validator("transaction_id", mode="before")
    @classmethod
    def _zero_means_none(cls, value: Any) -> Any:
        return transaction_id_or_none(_optional_int(value))

    @field_validator("status")
    @classmethod
    def _short_word(cls, value: str) -> str:
        return status_word(value)

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float_amount(cls, value: Any) -> Any:
        # NOTE: parse bodies with loads_json; a float here has already lost its cents.
        return Decimal(str(value)) if isinstance(value, float) else value


class CallbackTransaction(BaseModel):
    """The `transaction` part of an approval callback; every field may be null."""

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    id: int | None = None
    created_by_id: int | None = Field(default=None, alias="createdById")
    type: str | None = None
    date: datetime | None = None
    reference: str | None = None
    currency_code: str | None = Field(default=None, alias="currencyCode")
    amount: Decimal | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _type_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("date")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        # Xprizo documents an offset; a naive time is taken as UTC rather than refused,
        # because a callback is only a trigger and dropping it would lose the wake-up.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date is out of range once converted to UTC") from None

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float_amount(cls, value: Any) -> Any:
        return Decimal(str(value)) if isinstance(value, float) else value


class Callback(BaseModel):
    """The body Xprizo POSTs to the approval webhook; a trigger for a status check."""

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    status_type: int = Field(alias="statusType")
    status: str | None = None
    description: str | None = None
    actioned_by_id: int | None = Field(default=None, alias="actionedById")
    affected_contact_ids: list[int] | None = Field(
        default=None, alias="affectedContactIds"
    )
    transaction: CallbackTransaction | None = None

    @field_validator("status")
    @classmethod
    def _short_word(cls, value: str | None) -> str | None:
        return None if value is None else status_word(value)

    @classmethod
    def from_json(cls, body: bytes | str) -> "Callback":
        """Parse a raw callback body, keeping the amount exact."""
        return cls.model_validate(loads_json(body))

    @property
    def reference(self) -> str | None:
        """The merchant reference the callback names, if any."""
        return self.transaction.reference if self.transaction else None


class Preference(BaseModel):
    """The processing profile's preferences from ``GET Preference``.

    The webhook URL carries the receiver's secret, so it is left out of the repr;
    every other field Xprizo sends is kept in `raw`.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    approval_webhook: str | None = Field(
        default=None, alias="approvalWebhook", repr=False
    )
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_response(cls, data: Any) -> "Preference":
        """Build from Xprizo's JSON object; an empty webhook means none is set."""
        if not isinstance(data, dict):
            raise ValueError("preference response is not a JSON object")
        webhook = data.get("approvalWebhook")
        if not isinstance(webhook, str) or not webhook.strip():
            webhook = None
        return cls(approval_webhook=webhook and webhook.strip(), raw=data)
