"""Xprizo's messages as pydantic models, translated once into the project's words."""

import json
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
            transaction_id=_optional_int(data.get("key")),
            status=status.strip(),
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
        return None if value == 0 else value

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
        return value.astimezone(UTC)

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
