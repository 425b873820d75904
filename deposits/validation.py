"""Input checks for deposits: M-Pesa phone numbers and amounts, before any start."""

import re
from decimal import Decimal, InvalidOperation, localcontext

__all__ = [
    "InvalidAmountError",
    "InvalidPhoneError",
    "mask_phone",
    "normalize_phone",
    "validate_amount",
]

ACCEPTED_PHONE_FORMS = (
    "07XXXXXXXX, 01XXXXXXXX, 2547XXXXXXXX, 2541XXXXXXXX, +2547XXXXXXXX or "
    "+2541XXXXXXXX (spaces and dashes allowed)"
)

_SEPARATORS = re.compile(r"[\s\-]+")
# ASCII digits only: \d would also take fullwidth or Arabic-Indic digits.
_LOCAL = re.compile(r"0([17]\d{8})", re.ASCII)
_INTERNATIONAL = re.compile(r"\+?254([17]\d{8})", re.ASCII)
_PLAIN_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?", re.ASCII)
_MAX_AMOUNT_TEXT = 40
_CENT = Decimal("0.01")


class InvalidPhoneError(ValueError):
    """A phone number that is not a Kenyan M-Pesa number in an accepted form."""


class InvalidAmountError(ValueError):
    """An amount that is not a positive Decimal within the configured bounds."""


def mask_phone(phone: str) -> str:
    """Return the phone number with all but its prefix and last two digits hidden."""
    try:
        compact = _SEPARATORS.sub("", str(phone))
    except Exception:  # masking runs inside error paths and must never fail itself
        return "***"
    if len(compact) <= 4:
        return "*" * len(compact)
    if compact.startswith("+254"):
        keep = 5
    elif compact.startswith("254"):
        keep = 4
    else:
        keep = 2
    # A short, malformed number would show most of its digits; hide all but the end.
    if len(compact) < 9:
        keep = 0
    hidden = len(compact) - keep - 2
    return compact[:keep] + "*" * hidden + compact[-2:]


def normalize_phone(raw: str) -> str:
    """Return the number as 2547XXXXXXXX or 2541XXXXXXXX, or raise InvalidPhoneError."""
    if not isinstance(raw, str):
        raise InvalidPhoneError(
            f"phone number must be text, got {type(raw).__name__}; "
            f"accepted forms: {ACCEPTED_PHONE_FORMS}"
        )
    compact = _SEPARATORS.sub("", raw)
    if not compact:
        raise InvalidPhoneError(
            f"phone number is empty; accepted forms: {ACCEPTED_PHONE_FORMS}"
        )
    match = _LOCAL.fullmatch(compact) or _INTERNATIONAL.fullmatch(compact)
    if match is not None:
        return "254" + match.group(1)
    masked = mask_phone(compact)
    if not re.fullmatch(r"\+?\d+", compact, re.ASCII):
        problem = (
            "contains characters other than digits, spaces, dashes and a leading +"
        )
    elif compact.lstrip("+").startswith("254") or compact.startswith("0"):
        problem = "has the wrong number of digits or is not a 07/01 mobile number"
    else:
        problem = "is not a Kenyan mobile number"
    raise InvalidPhoneError(
        f"phone number {masked} {problem}; accepted forms: {ACCEPTED_PHONE_FORMS}"
    )


def validate_amount(
    raw: Decimal | int | str,
    *,
    minimum: Decimal,
    maximum: Decimal,
    allow_fractional: bool = False,
) -> Decimal:
    """Return the amount as a Decimal of at most 2 places, or raise InvalidAmountError.

    Floats are refused outright: a binary float cannot say which cents were meant.
    """
    accepted = (
        "a Decimal, an int or a plain decimal string like '100' or '100.50'"
        if allow_fractional
        else "a Decimal, an int or a string of whole shillings like '100'"
    )
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | str):
        raise InvalidAmountError(f"amount must be {accepted}, got {type(raw).__name__}")
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > _MAX_AMOUNT_TEXT or not _PLAIN_DECIMAL.fullmatch(text):
            raise InvalidAmountError(
                f"amount {raw[:_MAX_AMOUNT_TEXT]!r} is not a number; "
                f"expected {accepted}"
            )
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex guards this
            raise InvalidAmountError(f"amount {text!r} is not a number") from exc
    else:
        amount = Decimal(raw)
    if not amount.is_finite():
        raise InvalidAmountError(f"amount must be a finite number, got {amount}")
    if amount <= 0:
        raise InvalidAmountError(f"amount must be greater than zero, got {amount}")
    places = _decimal_places(amount)
    if places > 2:
        raise InvalidAmountError(
            f"amount {amount} has more than 2 decimal places; expected {accepted}"
        )
    if not allow_fractional and places > 0:
        raise InvalidAmountError(
            f"amount {amount} is not a whole number of shillings; M-Pesa moves whole "
            "shillings, so fractional amounts are not accepted"
        )
    if amount < minimum or amount > maximum:
        raise InvalidAmountError(
            f"amount {amount} is outside the accepted range {minimum} to {maximum}"
        )
    # Keep the digits as given, but never an exponent form ("1E+2") or more than two
    # places ("1.500"), so the amount serialises as a plain JSON number.
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if exponent > 0 or exponent < -2:
        target = Decimal(1) if exponent > 0 else _CENT
        with localcontext() as context:
            # Quantizing must not round a long amount to the default 28 digits.
            context.prec = len(amount.as_tuple().digits) + abs(exponent) + 2
            amount = amount.quantize(target)
    return amount


def _decimal_places(amount: Decimal) -> int:
    """Count the significant digits after the point, ignoring trailing zeros."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    places = -exponent
    for digit in reversed(digits):
        if places == 0 or digit != 0:
            break
        places -= 1
    return places
