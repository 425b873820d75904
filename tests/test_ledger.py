"""The ledger on SQLite and PostgreSQL: migrations, write-once outcomes under real
concurrency, exact money, UTC times, masked phones, operator resolutions."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from deposits.models import DecidedBy, DepositResult, Outcome
from ledger import Ledger, ResolutionRefusedError
from ledger.store import MIGRATIONS
from ledger.tables import Base

POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
HEAD = "0002"


def _postgres_database() -> Iterator[str]:
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({err})")
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: a SQLite file, or a throwaway PostgreSQL one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    yield ledger
    ledger.close()


def result(
    reference: str,
    outcome: Outcome = Outcome.APPROVED,
    *,
    amount: str = "150.00",
    phone_masked: str = "07******78",
    decided_by: DecidedBy = DecidedBy.CALLBACK,
) -> DepositResult:
    started = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    return DepositResult(
        reference=reference,
        outcome=outcome,
        decided_by=decided_by,
        reason="test",
        transaction_id=991,
        amount=Decimal(amount),
        currency="KES",
        phone_masked=phone_masked,
        xprizo_status="Completed",
        started_at=started,
        finished_at=started + timedelta(seconds=42),
    )


def all_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as err:  # kept and asserted on by the caller
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# Schema


def test_migrations_build_exactly_the_schema_the_models_describe(ledger):
    with ledger.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert ledger.schema_revision() == HEAD


def test_create_schema_still_works_for_callers_and_runs_the_migrations(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.create_schema()
    ledger.create_schema()
    assert ledger.schema_revision() == HEAD
    ledger.close()


def test_a_ledger_made_before_migrations_is_adopted_without_losing_rows(ledger_url):
    # The walking skeleton's create_all built revision 0001's tables, no version table.
    ledger = Ledger(ledger_url)
    with ledger.engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            text(
                "INSERT INTO deposits (reference, outcome, decided_by, amount,"
                " currency, phone_masked, started_at, finished_at, recorded_at)"
                " VALUES ('old-1', 'approved', 'poll', '10.50', 'KES', '07******78',"
                " :t, :t, :t)"
            ),
            {"t": datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None)},
        )

    ledger.migrate()

    assert ledger.schema_revision() == HEAD
    row = ledger.outcome("old-1")
    assert (row.outcome, row.amount, row.resolved_at) == (
        "approved",
        Decimal("10.50"),
        None,
    )
    assert "operator_actions" in inspect(ledger.engine).get_table_names()
    ledger.close()


def test_processes_migrating_at_once_leave_one_schema_not_an_error(ledger_url):
    ledgers = [Ledger(ledger_url) for _ in range(4)]
    outcomes = all_at_once(4, lambda i: ledgers[i].migrate())
    assert outcomes == [None] * 4
    assert ledgers[0].schema_revision() == HEAD
    for ledger in ledgers:
        ledger.close()


# Values


def test_amounts_round_trip_exactly_and_times_come_back_as_utc(ledger):
    ledger.record_outcome(result("exact-1", amount="249999.99"))
    row = ledger.outcome("exact-1")
    assert row.amount == Decimal("249999.99") and isinstance(row.amount, Decimal)
    assert row.started_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert row.finished_at.utcoffset() == timedelta(0)
    assert row.recorded_at.tzinfo is not None


def test_a_timestamp_in_another_zone_is_stored_as_the_same_instant(ledger):
    nairobi = datetime(2025, 3, 1, 12, 30, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Africa/Nairobi")
    )
    item = result("zone-1").model_copy(update={"started_at": nairobi})
    ledger.record_outcome(item)
    assert ledger.outcome("zone-1").started_at == datetime(
        2025, 3, 1, 12, 30, tzinfo=UTC
    )


def test_an_unmasked_phone_number_is_refused_before_it_reaches_the_database(ledger):
    with pytest.raises(ValueError, match="not masked"):
        ledger.record_outcome(result("phone-1", phone_masked="254712345678"))
    assert ledger.outcome("phone-1") is None


# Write-once outcomes


def test_the_same_outcome_recorded_twice_is_written_once(ledger):
    first = ledger.record_outcome(result("once-1"))
    again = ledger.record_outcome(result("once-1"))
    assert (first.written, again.written, again.conflict) == (True, False, False)
    assert [r.reference for r in ledger.deposits()] == ["once-1"]


def test_a_late_conflicting_outcome_becomes_a_reconciliation_item_not_an_overwrite(
    ledger,
):
    ledger.record_outcome(result("late-1", Outcome.CANCELLED))
    late = ledger.record_outcome(result("late-1", Outcome.APPROVED))
    assert (late.written, late.conflict, late.recorded_outcome) == (
        False,
        True,
        Outcome.CANCELLED,
    )
    assert ledger.outcome("late-1").outcome == "cancelled"
    [item] = ledger.reconciliation_items()
    assert (item.recorded_outcome, item.conflicting_outcome) == (
        "cancelled",
        "approved",
    )


def test_workers_recording_the_same_outcome_at_once_leave_exactly_one_row(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    workers = [Ledger(ledger_url) for _ in range(8)]

    outcomes = all_at_once(8, lambda i: workers[i].record_outcome(result("race-1")))

    assert [type(o).__name__ for o in outcomes] == ["RecordResult"] * 8
    assert sum(o.written for o in outcomes) == 1
    assert len(ledger.deposits()) == 1
    assert ledger.reconciliation_items() == []
    for each in (ledger, *workers):
        each.close()


def test_conflicting_outcomes_at_once_leave_one_row_and_an_item_per_loser(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    workers = [Ledger(ledger_url) for _ in range(8)]
    kinds = [Outcome.APPROVED, Outcome.CANCELLED] * 4

    outcomes = all_at_once(
        8, lambda i: workers[i].record_outcome(result("race-2", kinds[i]))
    )

    assert sum(o.written for o in outcomes) == 1
    winner = Outcome(ledger.outcome("race-2").outcome)
    losers = [k for k in kinds if k != winner]
    assert len(ledger.reconciliation_items()) == len(losers) == 4
    for each in (ledger, *workers):
        each.close()


def _record_in_a_process(url: str, reference: str, start: object) -> bool:
    ledger = Ledger(url)
    start.wait()
    written = ledger.record_outcome(result(reference)).written
    ledger.close()
    return written


def test_two_worker_processes_recording_one_outcome_leave_exactly_one_row(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager:
        start = manager.Barrier(2)
        with spawn.Pool(2) as pool:
            pending = [
                pool.apply_async(_record_in_a_process, (ledger_url, "proc-1", start))
                for _ in range(2)
            ]
            written = [p.get(timeout=60) for p in pending]
    assert sorted(written) == [False, True]
    assert len(ledger.deposits()) == 1
    ledger.close()


# Callbacks


def test_a_callback_is_kept_raw_and_truncated_whether_matched_or_not(ledger):
    ledger.record_callback(raw=b'{"x": 1}', result="signalled", reference="cb-1")
    ledger.record_callback(raw=b"z" * 20_000, result="unmatched")
    matched, unmatched = ledger.callbacks()
    assert (matched.reference, matched.raw, matched.result) == (
        "cb-1",
        '{"x": 1}',
        "signalled",
    )
    assert (unmatched.reference, len(unmatched.raw)) == (None, 8 * 1024)
    assert unmatched.received_at.tzinfo is not None
    assert [c.id for c in ledger.callbacks("cb-1")] == [matched.id]


# Operator actions


def test_an_operator_action_is_kept_with_who_and_why(ledger):
    action_id = ledger.record_operator_action(
        "op-1", "recheck", None, "customer called", "alice"
    )
    [action] = ledger.operator_actions("op-1")
    assert (action.id, action.action, action.outcome, action.actor) == (
        action_id,
        "recheck",
        None,
        "alice",
    )
    assert action.created_at.tzinfo is not None


def test_needs_review_is_resolved_once_and_a_retry_writes_nothing_more(ledger):
    ledger.record_outcome(
        result("rev-1", Outcome.NEEDS_REVIEW, decided_by=DecidedBy.DEADLINE)
    )

    first = ledger.resolve_needs_review(
        "rev-1", Outcome.APPROVED, "M-Pesa SMS seen", "bob"
    )
    retry = ledger.resolve_needs_review("rev-1", "approved", "M-Pesa SMS seen", "bob")

    assert (first.written, retry.written) == (True, False)
    row = ledger.outcome("rev-1")
    assert (row.outcome, row.decided_by) == ("approved", "operator")
    assert row.resolved_at is not None
    [action] = ledger.operator_actions("rev-1")
    assert (action.action, action.outcome, action.reason, action.actor) == (
        "resolve",
        "approved",
        "M-Pesa SMS seen",
        "bob",
    )


def test_a_second_different_resolution_is_refused_and_changes_nothing(ledger):
    ledger.record_outcome(
        result("rev-2", Outcome.NEEDS_REVIEW, decided_by=DecidedBy.DEADLINE)
    )
    ledger.resolve_needs_review("rev-2", Outcome.CANCELLED, "payer never paid", "bob")
    with pytest.raises(ResolutionRefusedError, match="resolved already"):
        ledger.resolve_needs_review("rev-2", Outcome.APPROVED, "changed my mind", "eve")
    assert ledger.outcome("rev-2").outcome == "cancelled"
    assert len(ledger.operator_actions("rev-2")) == 1


@pytest.mark.parametrize(
    ("recorded", "asked"),
    [
        (Outcome.APPROVED, Outcome.CANCELLED),
        (Outcome.CANCELLED, Outcome.CANCELLED),
        (Outcome.NEEDS_REVIEW, Outcome.REJECTED),
        (None, Outcome.APPROVED),
    ],
)
def test_resolving_anything_but_a_needs_review_outcome_is_refused(
    ledger, recorded, asked
):
    if recorded is not None:
        ledger.record_outcome(result("rev-3", recorded))
    with pytest.raises(ResolutionRefusedError):
        ledger.resolve_needs_review("rev-3", asked, "because", "mallory")
    assert ledger.operator_actions("rev-3") == []
    row = ledger.outcome("rev-3")
    assert (row.outcome if row else None) == (recorded.value if recorded else None)


def test_operators_resolving_one_deposit_at_once_settle_it_exactly_once(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.migrate()
    ledger.record_outcome(
        result("rev-4", Outcome.NEEDS_REVIEW, decided_by=DecidedBy.DEADLINE)
    )
    operators = [Ledger(ledger_url) for _ in range(6)]
    asked = [Outcome.APPROVED, Outcome.CANCELLED] * 3

    outcomes = all_at_once(
        6,
        lambda i: operators[i].resolve_needs_review(
            "rev-4", asked[i], "race", f"op{i}"
        ),
    )

    written = [o for o in outcomes if not isinstance(o, Exception) and o.written]
    assert len(written) == 1
    settled = ledger.outcome("rev-4").outcome
    for o, wanted in zip(outcomes, asked, strict=True):
        # Same outcome as the winner: an idempotent answer; the other: refused.
        if wanted.value == settled:
            assert not isinstance(o, Exception)
        else:
            assert isinstance(o, ResolutionRefusedError)
    assert len(ledger.operator_actions("rev-4")) == 1
    for each in (ledger, *operators):
        each.close()
