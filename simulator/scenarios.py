"""What the simulator does with a deposit: approve, cancel, silent, reject, pending."""

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Scenario", "ScenarioKind", "scenario_from_description"]


class ScenarioKind(StrEnum):
    """The outcome the simulator plays out for one deposit."""

    APPROVE = "approve"
    CANCEL = "cancel"
    SILENT = "silent"
    REJECT = "reject"
    PENDING = "pending"


class Scenario(BaseModel):
    """A scripted deposit outcome plus optional knobs; unset knobs use app defaults.

    Fault scenarios extend this model with further optional knobs, so existing
    scenario requests keep their meaning.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: ScenarioKind = ScenarioKind.PENDING
    delay: float | None = Field(default=None, ge=0)
    reason: str | None = None


_KEYWORDS = (
    (re.compile(r"\breject\b", re.IGNORECASE), ScenarioKind.REJECT),
    (re.compile(r"\b(cancel|fail)\b", re.IGNORECASE), ScenarioKind.CANCEL),
    (re.compile(r"\bsilent\b", re.IGNORECASE), ScenarioKind.SILENT),
    (re.compile(r"\b(pass|success)\b", re.IGNORECASE), ScenarioKind.APPROVE),
)


def scenario_from_description(description: str | None) -> Scenario:
    """Pick the scenario from test-mode keywords in a deposit description."""
    for pattern, kind in _KEYWORDS:
        if description and pattern.search(description):
            return Scenario(scenario=kind)
    return Scenario()
