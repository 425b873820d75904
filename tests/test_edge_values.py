"""Values from the edges that once slipped through (K6, K7): each is refused or bounded
before it reaches Xprizo, a log line, the ledger's columns or a workflow history."""

from __future__ import annotations

import json

import pytest

from deposits.validation import InvalidPhoneError, normalize_phone
from xprizo.models import MAX_STATUS_WORD, Callback, StatusReport


@pytest.mark.parametrize(
    "phone", ["07１２３４５６７８", "07١٢٣٤٥٦٧٨", "+254 7١٢٣٤٥٦٧٨"]
)
def test_k6_phones_with_non_ascii_digits_are_refused(phone):
    with pytest.raises(InvalidPhoneError):
        normalize_phone(phone)


def test_k7_a_long_or_multiline_status_word_is_bounded_and_printable():
    report = StatusReport.model_validate(
        {"id": 5, "description": "Active\nFAKE LOG LINE " + "A" * 5000}
    )
    assert len(report.status) <= MAX_STATUS_WORD
    assert "\n" not in report.status
    callback = Callback.from_json(
        b'{"statusType": 2, "status": "' + b"B" * 5000 + b'"}'
    )
    assert len(callback.status) <= MAX_STATUS_WORD


@pytest.mark.parametrize("transaction_id", [2**63, -5, 0])
def test_k7_an_implausible_transaction_id_is_no_id(transaction_id):
    report = StatusReport.model_validate(
        {"id": transaction_id, "description": "Pending"}
    )
    assert report.transaction_id is None


@pytest.mark.parametrize(
    "date", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+05:00"]
)
def test_k6_a_callback_date_out_of_range_in_utc_is_a_value_error(date):
    body = json.dumps(
        {"statusType": 2, "transaction": {"reference": "r1", "date": date}}
    ).encode()
    with pytest.raises(ValueError):
        Callback.from_json(body)
