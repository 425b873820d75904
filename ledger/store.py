"""Reading and writing the ledger; every outcome is written once per reference."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from deposits.models import DepositResult, Outcome, RecordResult
from ledger.tables import Base, CallbackRow, DepositRow, ReconciliationRow

log = logging.getLogger(__name__)

RAW_CALLBACK_LIMIT = 8 * 1024


class Ledger:
    """The ledger database behind one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine = create_engine(url, pool_pre_ping=True)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._engine

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        # TODO: schema changes need migrations; Alembic revisions would replace this.
        Base.metadata.create_all(self._engine)

    def record_outcome(self, result: DepositResult) -> RecordResult:
        """Write the outcome if none is recorded; a conflicting one becomes an item."""
        insert = (
            postgresql.insert
            if self._engine.dialect.name == "postgresql"
            else sqlite.insert
        )
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

    def outcome(self, reference: str) -> DepositRow | None:
        with Session(self._engine) as session:
            return session.get(DepositRow, reference)

    def deposits(self) -> list[DepositRow]:
        with Session(self._engine) as session:
            return list(session.scalars(select(DepositRow).order_by(DepositRow.started_at)))

    def callbacks(self, reference: str | None = None) -> list[CallbackRow]:
        with Session(self._engine) as session:
            query = select(CallbackRow).order_by(CallbackRow.id)
            if reference is not None:
                query = query.where(CallbackRow.reference == reference)
            return list(session.scalars(query))

    def reconciliation_items(self) -> list[ReconciliationRow]:
        with Session(self._engine) as session:
            return list(session.scalars(select(ReconciliationRow)))

    def close(self) -> None:
        self._engine.dispose()
