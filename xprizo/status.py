"""Translate Xprizo's status words into the three-valued verdict a deposit acts on."""

import logging
from datetime import timedelta
from enum import StrEnum

__all__ = ["Verdict", "map_status"]

logger = logging.getLogger(__name__)


class Verdict(StrEnum):
    """What a status word means for a deposit: approved, cancelled or not yet known."""

    APPROVED = "approved"
    CANCELLED = "cancelled"
    PENDING = "pending"


_VERDICTS = {
    "pending": Verdict.PENDING,
    "hold": Verdict.PENDING,
    "active": Verdict.APPROVED,
    "void": Verdict.CANCELLED,
    "rejected": Verdict.CANCELLED,
    "reject": Verdict.CANCELLED,
    "cancelled": Verdict.CANCELLED,
}
_NOT_FOUND = "notfound"


def map_status(
    word: str, *, since_create: timedelta, not_found_grace: timedelta
) -> Verdict:
    """Return the verdict for an Xprizo status word.

    `NotFound` is pending while `since_create` is within `not_found_grace` (a new
    transaction may not be visible yet) and cancelled after it. Unknown words are
    pending, never approved.
    """
    key = word.strip().lower() if isinstance(word, str) else ""
    if key == _NOT_FOUND:
        if since_create < not_found_grace:
            return Verdict.PENDING
        return Verdict.CANCELLED
    verdict = _VERDICTS.get(key)
    if verdict is None:
        logger.warning(
            "unknown Xprizo status word %r, treating it as pending", str(word)[:64]
        )
        return Verdict.PENDING
    return verdict
