"""Tests for phone and amount validation (fault kind K6: bad input)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deposits.validation import (
    InvalidAmountError,
    InvalidPhoneError,
    mask_phone,
    normalize_phone,
    validate_amount,
)

MIN = Decimal("10")
MAX = Decimal("150000")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        ("254712345678", "254712345678"),
        ("254112345678", "254112345678"),
        ("+254712345678", "254712345678"),
        ("+254 712 345 678", "254712345678"),
        ("+254-712-345-678", "254712345678"),
        (" 0712 345-678 ", "254712345678"),
        ("+2541 1234 5678", "254112345678"),
    ],
)
def test_normalize_phone_accepts_documented_forms(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "0812345678",
        "071234567",
        "07123456789",
        "254812345678",
        "25471234567",
        "+25471234567890",
        "712345678",
        "+1 415 555 0100",
        "07123a5678",
        "0712.345.678",
        "++254712345678",
        "00254712345678",
    ],
)
def test_normalize_phone_rejects_other_forms(raw: str) -> None:
    with pytest.raises(InvalidPhoneError) as caught:
        normalize_phone(raw)
    assert "accepted forms" in str(caught.value)
    assert "07XXXXXXXX" in str(caught.value)


def test_normalize_phone_error_does_not_echo_the_number() -> None:
    with pytest.raises(InvalidPhoneError) as caught:
        normalize_phone("0812345678")
    message = str(caught.value)
    assert "0812345678" not in message
    assert "12345" not in message
    assert "08******78" in message


def test_normalize_phone_rejects_non_text() -> None:
    with pytest.raises(InvalidPhoneError):
        normalize_phone(712345678)  # type: ignore[arg-type]


def test_invalid_phone_error_is_a_value_error() -> None:
    assert issubclass(InvalidPhoneError, ValueError)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("254712345678", "2547******78"),
        ("254112345678", "2541******78"),
        ("0712345678", "07******78"),
        ("+254712345678", "+2547******78"),
        ("", ""),
        ("12", "**"),
    ],
)
def test_mask_phone_keeps_prefix_and_last_two_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@given(st.text())
def test_mask_phone_never_raises_and_never_shows_the_middle(phone: str) -> None:
    masked = mask_phone(phone)
    assert isinstance(masked, str)
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) >= 12:
        assert digits not in masked


@given(
    prefix=st.sampled_from(["07", "01", "2547", "2541", "+2547", "+2541"]),
    rest=st.text(alphabet="0123456789", min_size=8, max_size=8),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_normalize_phone_property_accepted_forms_normalise(
    prefix: str, rest: str, separator: str
) -> None:
    raw = prefix + separator + rest[:4] + separator + rest[4:]
    normalized = normalize_phone(raw)
    assert normalized == "254" + prefix[-1] + rest
    assert normalize_phone(normalized) == normalized


@given(st.text(max_size=20))
def test_normalize_phone_property_result_or_clean_error(raw: str) -> None:
    try:
        normalized = normalize_phone(raw)
    except InvalidPhoneError as exc:
        # The digits must not be echoed; other characters may be (an input of
        # asterisks looks like its own mask).
        digits = "".join(c for c in raw if c in "0123456789")
        if len(digits) >= 9:
            assert digits not in str(exc)
    else:
        assert len(normalized) == 12
        assert normalized.startswith(("2547", "2541"))
        assert normalized.isdigit()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("100"), Decimal("100")),
        (100, Decimal("100")),
        ("100", Decimal("100")),
        (" 250 ", Decimal("250")),
        (Decimal("1E+2"), Decimal("100")),
        (Decimal("100.00"), Decimal("100.00")),
        ("10", Decimal("10")),
        ("150000", Decimal("150000")),
    ],
)
def test_validate_amount_accepts_whole_shillings(
    raw: object, expected: Decimal
) -> None:
    result = validate_amount(raw, minimum=MIN, maximum=MAX)  # type: ignore[arg-type]
    assert result == expected
    assert isinstance(result, Decimal)
    assert "E" not in str(result)


def test_validate_amount_keeps_digits_as_given() -> None:
    assert str(validate_amount("100", minimum=MIN, maximum=MAX)) == "100"
    assert str(validate_amount(Decimal("1E+2"), minimum=MIN, maximum=MAX)) == "100"
    fractional = validate_amount(
        Decimal("12.500"), minimum=MIN, maximum=MAX, allow_fractional=True
    )
    assert str(fractional) == "12.50"


@pytest.mark.parametrize("raw", ["12.50", Decimal("12.5"), "99.99", Decimal("10.01")])
def test_validate_amount_allows_cents_when_enabled(raw: object) -> None:
    result = validate_amount(
        raw,  # type: ignore[arg-type]
        minimum=MIN,
        maximum=MAX,
        allow_fractional=True,
    )
    assert result == Decimal(str(raw))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (100.0, "got float"),
        (True, "got bool"),
        (None, "got NoneType"),
        ("12.5", "whole number of shillings"),
        (Decimal("12.50"), "whole number of shillings"),
        ("12.345", "more than 2 decimal places"),
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        (Decimal("-0"), "greater than zero"),
        ("abc", "not a number"),
        ("1,000", "not a number"),
        ("1e3", "not a number"),
        ("", "not a number"),
        ("NaN", "not a number"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        ("9", "outside the accepted range 10 to 150000"),
        (150001, "outside the accepted range"),
    ],
)
def test_validate_amount_rejects_with_clear_message(raw: object, fragment: str) -> None:
    with pytest.raises(InvalidAmountError) as caught:
        validate_amount(raw, minimum=MIN, maximum=MAX)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_validate_amount_keeps_long_amounts_exact() -> None:
    long_amount = Decimal("1234567890123456789012345678901234.5")
    result = validate_amount(
        long_amount,
        minimum=MIN,
        maximum=Decimal("1E40"),
        allow_fractional=True,
    )
    assert result == long_amount
    huge = validate_amount(Decimal("1E+35"), minimum=MIN, maximum=Decimal("1E40"))
    assert str(huge) == "1" + "0" * 35


def test_validate_amount_fractional_still_limits_places() -> None:
    with pytest.raises(InvalidAmountError, match="more than 2 decimal places"):
        validate_amount("10.005", minimum=MIN, maximum=MAX, allow_fractional=True)


def test_invalid_amount_error_is_a_value_error() -> None:
    assert issubclass(InvalidAmountError, ValueError)


@given(st.integers(min_value=10, max_value=150000))
def test_validate_amount_property_whole_amounts_in_range_pass(value: int) -> None:
    for raw in (value, str(value), Decimal(value)):
        assert validate_amount(raw, minimum=MIN, maximum=MAX) == value


@given(
    st.one_of(
        st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000")),
        st.decimals(allow_nan=True, allow_infinity=True),
    )
)
def test_validate_amount_property_result_is_always_valid(raw: Decimal) -> None:
    try:
        result = validate_amount(raw, minimum=MIN, maximum=MAX, allow_fractional=True)
    except InvalidAmountError:
        assert (
            not raw.is_finite()
            or not MIN <= raw <= MAX
            or raw != raw.quantize(Decimal("0.01"))
        )
    else:
        assert result == raw
        assert MIN <= result <= MAX
        exponent = result.as_tuple().exponent
        assert isinstance(exponent, int) and -2 <= exponent <= 0


@given(st.floats(allow_nan=True))
def test_validate_amount_property_floats_always_refused(raw: float) -> None:
    with pytest.raises(InvalidAmountError, match="float"):
        validate_amount(raw, minimum=MIN, maximum=MAX)  # type: ignore[arg-type]


@given(
    national=st.sampled_from(["7", "1"]),
    rest=st.text(alphabet="0123456789", min_size=8, max_size=8),
    form=st.sampled_from(["0", "254", "+254"]),
    cuts=st.lists(st.sampled_from([" ", "-", "  ", " - "]), min_size=13, max_size=13),
)
def test_normalize_phone_property_separators_anywhere_are_ignored(
    national: str, rest: str, form: str, cuts: list[str]
) -> None:
    digits = form + national + rest
    raw = "".join(char + cut for char, cut in zip(digits, cuts, strict=False))
    assert raw.replace(" ", "").replace("-", "") == digits
    assert normalize_phone(raw) == "254" + national + rest


@given(st.text(alphabet="0123456789", min_size=1, max_size=16))
def test_normalize_phone_property_wrong_length_names_accepted_forms(
    digits: str,
) -> None:
    valid_lengths = {10: "0", 12: "254"}
    if valid_lengths.get(len(digits)) and digits.startswith(valid_lengths[len(digits)]):
        return
    with pytest.raises(InvalidPhoneError) as caught:
        normalize_phone(digits)
    assert "accepted forms" in str(caught.value)


@given(
    whole=st.integers(min_value=10, max_value=149999),
    cents=st.integers(min_value=1, max_value=99),
)
def test_validate_amount_property_cents_refused_by_default_allowed_by_setting(
    whole: int, cents: int
) -> None:
    text = f"{whole}.{cents:02d}"
    with pytest.raises(InvalidAmountError, match="whole number of shillings"):
        validate_amount(text, minimum=MIN, maximum=MAX)
    assert validate_amount(
        text, minimum=MIN, maximum=MAX, allow_fractional=True
    ) == Decimal(text)


@given(st.decimals(min_value=Decimal("10"), max_value=Decimal("150000"), places=2))
def test_validate_amount_property_survives_the_xprizo_request_body_exactly(
    raw: Decimal,
) -> None:
    from xprizo.client import _encode_json
    from xprizo.models import loads_json

    amount = validate_amount(raw, minimum=MIN, maximum=MAX, allow_fractional=True)
    sent = loads_json(_encode_json({"amount": amount}))["amount"]
    assert sent == raw
    assert "e" not in format(amount, "f").lower()
