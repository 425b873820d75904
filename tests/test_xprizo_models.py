"""Tests for the Xprizo message models (fault kinds K3, K6, K9)."""

from datetime import UTC, datetime
from decimal import Decimal

from xprizo import (
    CALLBACK_ACCEPTED,
    CALLBACK_CANCELLED,
    CALLBACK_NEW,
    CALLBACK_REJECTED,
    Callback,
    CallbackType,
    CreatedDeposit,
    StatusReport,
    loads_json,
)


def test_callback_constants_match_status_types() -> None:
    assert (CALLBACK_NEW, CALLBACK_ACCEPTED, CALLBACK_REJECTED, CALLBACK_CANCELLED) == (
        1,
        2,
        3,
        4,
    )
    assert CallbackType(2) is CallbackType.ACCEPTED


def test_callback_parses_full_body_with_exact_amount() -> None:
    body = (
        b'{"statusType": 2, "status": "Accepted", "description": " pay ",'
        b' "actionedById": 5, "affectedContactIds": [1, 2], "somethingNew": true,'
        b' "transaction": {"id": 77, "createdById": 9, "type": "MPD",'
        b' "date": "2026-01-02T03:04:05+03:00", "reference": " dep-1 ",'
        b' "currencyCode": "KES", "amount": 1234567890.123456789}}'
    )
    callback = Callback.from_json(body)
    assert callback.status_type == CALLBACK_ACCEPTED
    assert callback.description == "pay"
    assert callback.reference == "dep-1"
    assert callback.transaction is not None
    assert callback.transaction.amount == Decimal("1234567890.123456789")
    assert callback.transaction.date == datetime(2026, 1, 2, 0, 4, 5, tzinfo=UTC)
    assert callback.transaction.date.tzinfo is UTC
    assert callback.actioned_by_id == 5


def test_callback_tolerates_all_null_transaction_k3() -> None:
    body = {
        "statusType": 3,
        "status": "Rejected",
        "description": None,
        "transaction": {
            "id": None,
            "createdById": None,
            "type": None,
            "date": None,
            "reference": None,
            "currencyCode": None,
            "amount": None,
        },
    }
    callback = Callback.model_validate(body)
    assert callback.status_type == 3
    assert callback.reference is None


def test_callback_without_transaction_and_naive_date_taken_as_utc() -> None:
    assert Callback.model_validate({"statusType": 0}).transaction is None
    callback = Callback.model_validate(
        {"statusType": 1, "transaction": {"date": "2026-01-02T03:04:05", "type": 12}}
    )
    assert callback.transaction is not None
    assert callback.transaction.date == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert callback.transaction.type == "12"


def test_callback_populates_by_field_name() -> None:
    callback = Callback(status_type=CALLBACK_CANCELLED, status="Cancelled")
    assert callback.model_dump(by_alias=True)["statusType"] == 4


def test_status_report_from_xprizo_answer() -> None:
    report = StatusReport.model_validate(
        loads_json('{"id": 12, "description": "Active"}')
    )
    assert report == StatusReport(transaction_id=12, status="Active")
    full = StatusReport.model_validate(
        loads_json(
            '{"id": 12, "description": " Pending ", "amount": 100.50,'
            ' "currencyCode": "KES", "reference": "r", "extra": 1}'
        )
    )
    assert full.status == "Pending"
    assert full.amount == Decimal("100.50")
    assert full.currency == "KES"
    assert full.reference == "r"


def test_status_report_not_found_has_no_transaction_id() -> None:
    report = StatusReport.model_validate({"id": 0, "description": "NotFound"})
    assert report.transaction_id is None
    assert report.status == "NotFound"


def test_created_deposit_from_response() -> None:
    created = CreatedDeposit.from_response(
        {"key": 501, "statusCode": 1, "status": "Pending", "value": "Awaiting"}
    )
    assert created == CreatedDeposit(
        transaction_id=501, status="Pending", status_code=1, message="Awaiting"
    )
    assert created.already_existed is False
    assert (
        CreatedDeposit.from_response({"key": "77", "status": "Active"}).transaction_id
        == 77
    )
