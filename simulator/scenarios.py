"""What the simulator does with a deposit: its outcome and the faults around it.

A scenario is chosen per reference, through ``PUT /_sim/scenarios/{reference}`` or, as
Xprizo's test mode does, from keywords in the deposit's description. Every knob is
optional and off by default, so an older scenario request keeps its meaning.
docs/SIMULATOR.md lists every knob and keyword.
"""

import re
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DESCRIPTION_KEYWORDS",
    "Endpoint",
    "EndpointFaults",
    "Scenario",
    "ScenarioKind",
    "scenario_from_description",
]

Endpoint = Literal["create", "status", "set_webhook", "test_webhook", "preference"]
"""The simulator's name for each Xprizo endpoint, as fault knobs and logs use it."""


class ScenarioKind(StrEnum):
    """The outcome the simulator plays out for one deposit."""

    APPROVE = "approve"
    CANCEL = "cancel"
    SILENT = "silent"
    REJECT = "reject"
    PENDING = "pending"


class Scenario(BaseModel):
    """A scripted deposit outcome plus optional fault knobs; unset knobs are off.

    Times are seconds after the create; the knobs combine freely.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: ScenarioKind = ScenarioKind.PENDING
    # Outcome
    delay: float | None = Field(default=None, ge=0)
    reason: str | None = None
    reject_json: bool = False
    reject_in_body: bool = False
    pending_status: str | None = None
    final_status: str | None = None
    # Callbacks
    no_callbacks: bool = False
    duplicate_callbacks: int = Field(default=1, ge=1, le=50)
    new_after_decision: bool = False
    null_transaction_fields: bool = False
    cancel_callback_type: Literal[3, 4] = 4
    late_callback_after: float | None = Field(default=None, ge=0)
    forge_approval_callback_after: float | None = Field(default=None, ge=0)
    callback_amount: Decimal | None = None
    callback_currency: str | None = None
    # Status checks
    not_found_for: float | None = Field(default=None, ge=0)
    status_errors: list[int] = Field(default_factory=list, max_length=100)
    retry_after: int | None = Field(default=1, ge=0)
    status_amount: Decimal | None = None
    status_currency: str | None = None
    status_reference: str | None = None
    # The create
    create_errors: list[int] = Field(default_factory=list, max_length=100)
    create_error_after_create: int | None = Field(default=None, ge=400, le=599)
    create_hang_after_create: float | None = Field(default=None, ge=0)
    # Every endpoint that names this reference
    slow: dict[Literal["create", "status"], float] = Field(default_factory=dict)

    @field_validator("status_errors", "create_errors")
    @classmethod
    def _error_codes(cls, codes: list[int]) -> list[int]:
        for code in codes:
            if not 400 <= code <= 599:
                raise ValueError(f"error code {code} is not a 4xx or 5xx status")
        return codes

    @field_validator("slow")
    @classmethod
    def _no_negative_delays(cls, slow: dict[str, float]) -> dict[str, float]:
        if any(seconds < 0 for seconds in slow.values()):
            raise ValueError("slow delays must be zero or more seconds")
        return slow

    @field_validator("callback_amount", "status_amount", mode="before")
    @classmethod
    def _no_float_amount(cls, value: object) -> object:
        # JSON numbers reach here as floats unless the body was parsed with Decimals.
        return Decimal(str(value)) if isinstance(value, float) else value

    @model_validator(mode="after")
    def _reject_knobs_need_reject(self) -> "Scenario":
        if (self.reject_json or self.reject_in_body) and (
            self.scenario is not ScenarioKind.REJECT
        ):
            raise ValueError("reject_json and reject_in_body need scenario 'reject'")
        return self


class EndpointFaults(BaseModel):
    """Faults for whole endpoints, whatever the reference (``PUT /_sim/faults``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    errors: dict[Endpoint, list[int]] = Field(default_factory=dict)
    retry_after: int | None = Field(default=1, ge=0)
    slow: dict[Endpoint, float] = Field(default_factory=dict)
    garbled: list[Endpoint] = Field(default_factory=list)

    @field_validator("errors")
    @classmethod
    def _error_codes(cls, errors: dict[str, list[int]]) -> dict[str, list[int]]:
        for codes in errors.values():
            for code in codes:
                if not 400 <= code <= 599:
                    raise ValueError(f"error code {code} is not a 4xx or 5xx status")
        return errors


_OUTCOMES = (
    (re.compile(r"\breject\b", re.IGNORECASE), ScenarioKind.REJECT),
    (re.compile(r"\b(cancel|fail)\b", re.IGNORECASE), ScenarioKind.CANCEL),
    (re.compile(r"\bsilent\b", re.IGNORECASE), ScenarioKind.SILENT),
    (re.compile(r"\b(pass|success)\b", re.IGNORECASE), ScenarioKind.APPROVE),
)

DESCRIPTION_KEYWORDS: dict[str, dict[str, object]] = {
    "NoCallbacks": {"no_callbacks": True},
    "Duplicated": {"duplicate_callbacks": 3},
    "NewLast": {"new_after_decision": True},
    "NullFields": {"null_transaction_fields": True},
    "LateCallback": {"late_callback_after": 5.0},
    "Forged": {"forge_approval_callback_after": 0.5},
    "NotFoundFirst": {"not_found_for": 3.0},
    "StatusErrors": {"status_errors": [500, 500]},
    "RateLimited": {"status_errors": [429, 429], "retry_after": 1},
    "CreateLost": {"create_error_after_create": 502},
    "CreateHang": {"create_hang_after_create": 20.0},
    "Slow": {"slow": {"create": 0.5, "status": 0.5}},
    "WrongAmount": {"status_amount": "1", "callback_amount": "1"},
    "WrongCurrency": {"status_currency": "USD", "callback_currency": "USD"},
}
"""Simulator-only description keywords (whole words, any case) and their knobs."""

_KNOB_PATTERNS = tuple(
    (re.compile(rf"\b{word}\b", re.IGNORECASE), knobs)
    for word, knobs in DESCRIPTION_KEYWORDS.items()
)


def scenario_from_description(description: str | None) -> Scenario:
    """Pick the scenario from test-mode keywords in a deposit description.

    Xprizo's words choose the outcome (Reject, Cancel/Fail, Silent, Pass/Success, in
    that order of precedence; none means pending); the simulator's own keywords in
    DESCRIPTION_KEYWORDS add fault knobs on top.
    """
    if not description:
        return Scenario()
    values: dict[str, object] = {}
    for pattern, kind in _OUTCOMES:
        if pattern.search(description):
            values["scenario"] = kind
            break
    for pattern, knobs in _KNOB_PATTERNS:
        if pattern.search(description):
            values.update(knobs)
    return Scenario.model_validate(values)
