"""Reading and writing the ledger; every outcome is written once per reference."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from deposits.models import DecidedBy, DepositResult, Outcome, RecordResult
from ledger.tables import (
    CallbackRow,
    DepositRow,
    OperatorActionRow,
    ReconciliationRow,
    utc_now,
)

log = logging.getLogger(__name__)

RAW_CALLBACK_LIMIT = 8 * 1024
MIGRATIONS = Path(__file__).parent / "migrations"
# The revision that databases made by the old create_all() already hold.
BASELINE_REVISION = "0001"
# Any constant works; it only has to be the same for every process migrating at once.
_MIGRATION_LOCK_KEY = 7_433_001
# A masked number keeps its prefix and last two digits; more digits means it is not.
_MAX_MASKED_DIGITS = 6
_SETTLED_BY_OPERATOR = (Outcome.APPROVED, Outcome.CANCELLED)


class ResolutionRefusedError(ValueError):
    """An operator resolution the ledger will not apply (not needs_review, unknown)."""


class Ledger:
    """The ledger database behind one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._sqlite_file: Path | None = None
        if parsed.drivername.startswith("sqlite") and parsed.database not in (
            None,
            "",
            ":memory:",
        ):
            self._sqlite_file = Path(parsed.database)
            self._sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine = create_engine(url, pool_pre_ping=True)
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._engine

    # Schema

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to run from many processes."""
        with self._migration_lock() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            tables = set(inspect(connection).get_table_names())
            if "deposits" in tables and "alembic_version" not in tables:
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, "head")

    def create_schema(self) -> None:
        """Kept for callers: the schema now comes from the migrations."""
        self.migrate()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before any migration."""
        with self._engine.connect() as connection:
            if "alembic_version" not in inspect(connection).get_table_names():
                return None
            return connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        if self._engine.dialect.name == "postgresql":
            # A transaction-scoped advisory lock: concurrent migrators queue up and the
            # commit that ends the migration releases it.
            with self._engine.begin() as connection:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _MIGRATION_LOCK_KEY},
                )
                yield connection
            return
        if self._sqlite_file is None:
            with self._engine.begin() as connection:
                yield connection
            return
        # SQLite's DDL runs outside transactions here, so processes sharing the file
        # (worker and webhook receiver) take turns through a lock file beside it.
        lock_path = self._sqlite_file.with_name(
            self._sqlite_file.name + ".migrate-lock"
        )
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with self._engine.begin() as connection:
                    yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    # Outcomes

    def record_outcome(self, result: DepositResult) -> RecordResult:
        """Write the outcome if none is recorded; a conflicting one becomes an item."""
        if sum(ch.isdigit() for ch in result.phone_masked) > _MAX_MASKED_DIGITS:
            raise ValueError(f"deposit {result.reference}: phone number is not masked")
        insert = (
            postgresql.insert
            if self._engine.dialect.name == "postgresql"
            else sqlite.insert
        )
        mismatches = [
            m.model_dump(mode="json") for m in getattr(result, "mismatches", [])
        ]
        row = {
            "reference": result.reference,
            "outcome": result.outcome.value,
            "decided_by": result.decided_by.value,
            "reason": result.reason,
            "transaction_id": result.transaction_id,
            "amount": result.amount,
            "currency": result.currency,
            "phone_masked": result.phone_masked,
            "xprizo_status": result.xprizo_status,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "recorded_at": utc_now(),
            "mismatches": json.dumps(mismatches) if mismatches else None,
        }
        with self._sessions.begin() as session:
            inserted = session.execute(
                insert(DepositRow)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["reference"])
                .returning(DepositRow.reference)
            ).first()
            if inserted is not None:
                log.info(
                    "deposit %s: outcome %s recorded", result.reference, result.outcome
                )
                return RecordResult(written=True, recorded_outcome=result.outcome)
            existing = session.get(DepositRow, result.reference)
            assert existing is not None
            recorded = Outcome(existing.outcome)
            if recorded == result.outcome:
                return RecordResult(written=False, recorded_outcome=recorded)
            session.add(
                ReconciliationRow(
                    reference=result.reference,
                    recorded_outcome=recorded.value,
                    conflicting_outcome=result.outcome.value,
                    detail=result.reason,
                )
            )
            log.warning(
                "deposit %s: %s conflicts with recorded %s; reconciliation item added",
                result.reference,
                result.outcome,
                recorded,
            )
            return RecordResult(written=False, recorded_outcome=recorded, conflict=True)

    # Operators

    def record_operator_action(
        self,
        reference: str,
        action: str,
        outcome: Outcome | str | None,
        reason: str,
        actor: str,
    ) -> int:
        """Keep what an operator did to a deposit; returns the action's id."""
        with self._sessions.begin() as session:
            row = OperatorActionRow(
                reference=reference,
                action=action,
                outcome=None if outcome is None else Outcome(outcome).value,
                reason=reason,
                actor=actor,
            )
            session.add(row)
            session.flush()
            log.info("deposit %s: operator action %s by %s", reference, action, actor)
            return row.id

    def resolve_needs_review(
        self, reference: str, outcome: Outcome | str, reason: str, actor: str
    ) -> RecordResult:
        """Settle a recorded needs_review outcome once, with an operator action.

        The same resolution again (an activity retry) answers ``written=False``;
        anything else raises ResolutionRefusedError and changes nothing.
        """
        outcome = Outcome(outcome)
        if outcome not in _SETTLED_BY_OPERATOR:
            raise ResolutionRefusedError(
                f"deposit {reference}: an operator settles to approved or cancelled,"
                f" not {outcome}"
            )
        with self._sessions.begin() as session:
            # The WHERE makes it a compare-and-set: of two resolutions at once, only
            # the first still finds needs_review.
            changed = session.execute(
                update(DepositRow)
                .where(
                    DepositRow.reference == reference,
                    DepositRow.outcome == Outcome.NEEDS_REVIEW.value,
                )
                .values(
                    outcome=outcome.value,
                    decided_by=DecidedBy.OPERATOR.value,
                    resolved_at=utc_now(),
                )
            ).rowcount
            if changed == 1:
                session.add(
                    OperatorActionRow(
                        reference=reference,
                        action="resolve",
                        outcome=outcome.value,
                        reason=reason,
                        actor=actor,
                    )
                )
                log.info(
                    "deposit %s: needs_review resolved to %s by %s",
                    reference,
                    outcome,
                    actor,
                )
                return RecordResult(written=True, recorded_outcome=outcome)
            existing = session.get(DepositRow, reference)
            if existing is None:
                raise ResolutionRefusedError(
                    f"deposit {reference}: no outcome recorded"
                )
            if existing.resolved_at is not None and existing.outcome == outcome.value:
                return RecordResult(written=False, recorded_outcome=outcome)
            raise ResolutionRefusedError(
                f"deposit {reference}: recorded outcome is {existing.outcome}"
                f"{' (resolved already)' if existing.resolved_at else ''},"
                " not needs_review"
            )

    # Callbacks

    def record_callback(
        self,
        *,
        raw: bytes,
        result: str,
        reference: str | None = None,
        transaction_id: int | None = None,
        status_type: int | None = None,
        status: str | None = None,
    ) -> None:
        """Keep a received callback, truncated, with what became of it."""
        with self._sessions.begin() as session:
            session.add(
                CallbackRow(
                    reference=reference,
                    transaction_id=transaction_id,
                    status_type=status_type,
                    status=status,
                    result=result,
                    raw=raw[:RAW_CALLBACK_LIMIT].decode("utf-8", errors="replace"),
                )
            )

    # Reading

    def outcome(self, reference: str) -> DepositRow | None:
        """The recorded outcome of one deposit, if any."""
        with Session(self._engine) as session:
            return session.get(DepositRow, reference)

    def deposits(self) -> list[DepositRow]:
        """Every recorded deposit, oldest first."""
        with Session(self._engine) as session:
            return list(
                session.scalars(select(DepositRow).order_by(DepositRow.started_at))
            )

    def callbacks(self, reference: str | None = None) -> list[CallbackRow]:
        """Received callbacks in arrival order, for one reference or all."""
        with Session(self._engine) as session:
            query = select(CallbackRow).order_by(CallbackRow.id)
            if reference is not None:
                query = query.where(CallbackRow.reference == reference)
            return list(session.scalars(query))

    def reference_for_transaction(self, transaction_id: int) -> str | None:
        """The reference of a transaction id, from outcomes or signalled callbacks."""
        with Session(self._engine) as session:
            found = session.scalar(
                select(DepositRow.reference)
                .where(DepositRow.transaction_id == transaction_id)
                .limit(1)
            )
            if found is None:
                found = session.scalar(
                    select(CallbackRow.reference)
                    .where(
                        CallbackRow.transaction_id == transaction_id,
                        CallbackRow.reference.is_not(None),
                        CallbackRow.result == "signalled",
                    )
                    .order_by(CallbackRow.id.desc())
                    .limit(1)
                )
            return found

    def reconciliation_items(self) -> list[ReconciliationRow]:
        """Every conflicting fact kept for a person to settle."""
        with Session(self._engine) as session:
            return list(
                session.scalars(
                    select(ReconciliationRow).order_by(ReconciliationRow.id)
                )
            )

    def operator_actions(self, reference: str | None = None) -> list[OperatorActionRow]:
        """Operator actions in the order they were taken, for one reference or all."""
        with Session(self._engine) as session:
            query = select(OperatorActionRow).order_by(OperatorActionRow.id)
            if reference is not None:
                query = query.where(OperatorActionRow.reference == reference)
            return list(session.scalars(query))

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Worker and webhook receiver write the same file: wait for the lock, don't fail.
    cursor.execute("PRAGMA busy_timeout = 15000")
    # Write-ahead logging: one fsync per commit instead of the rollback journal's
    # several, and readers never wait for the writer. FULL keeps every commit durable.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()
