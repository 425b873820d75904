"""Tests for mapping Xprizo status words to verdicts (fault kinds K4, K5)."""

import logging
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xprizo import Verdict, map_status

GRACE = timedelta(minutes=2)
EARLY = timedelta(seconds=5)
LATE = timedelta(minutes=10)


@pytest.mark.parametrize(
    ("word", "verdict"),
    [
        ("Pending", Verdict.PENDING),
        ("Hold", Verdict.PENDING),
        ("Active", Verdict.APPROVED),
        ("Void", Verdict.CANCELLED),
        ("Rejected", Verdict.CANCELLED),
        ("Reject", Verdict.CANCELLED),
        ("Cancelled", Verdict.CANCELLED),
    ],
)
def test_map_status_follows_the_documented_table(word: str, verdict: Verdict) -> None:
    for since in (EARLY, LATE):
        assert map_status(word, since_create=since, not_found_grace=GRACE) is verdict


@pytest.mark.parametrize("word", ["active", "ACTIVE", "  Active\n", "\tactive "])
def test_map_status_ignores_case_and_whitespace(word: str) -> None:
    assert (
        map_status(word, since_create=EARLY, not_found_grace=GRACE) is Verdict.APPROVED
    )


def test_map_status_not_found_is_pending_within_grace_k4() -> None:
    verdict = map_status("NotFound", since_create=EARLY, not_found_grace=GRACE)
    assert verdict is Verdict.PENDING


def test_map_status_not_found_is_cancelled_after_grace() -> None:
    verdict = map_status(" notfound ", since_create=LATE, not_found_grace=GRACE)
    assert verdict is Verdict.CANCELLED


def test_map_status_not_found_grace_boundary_is_final() -> None:
    just_before = GRACE - timedelta(microseconds=1)
    assert (
        map_status("NotFound", since_create=just_before, not_found_grace=GRACE)
        is Verdict.PENDING
    )
    assert (
        map_status("NotFound", since_create=GRACE, not_found_grace=GRACE)
        is Verdict.CANCELLED
    )


@pytest.mark.parametrize("word", ["Redirect", "Approved", "Completed", "", "   ", "?"])
def test_map_status_unknown_word_is_pending_and_warned_k5(
    word: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="xprizo.status"):
        verdict = map_status(word, since_create=LATE, not_found_grace=GRACE)
    assert verdict is Verdict.PENDING
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_map_status_known_word_logs_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="xprizo.status"):
        map_status("Pending", since_create=EARLY, not_found_grace=GRACE)
    assert caplog.records == []


def test_verdict_values_are_the_project_words() -> None:
    assert [v.value for v in Verdict] == ["approved", "cancelled", "pending"]


@given(st.text(max_size=30), st.integers(min_value=0, max_value=10_000))
def test_map_status_property_only_active_approves(word: str, seconds: int) -> None:
    verdict = map_status(
        word, since_create=timedelta(seconds=seconds), not_found_grace=GRACE
    )
    if verdict is Verdict.APPROVED:
        assert word.strip().lower() == "active"
