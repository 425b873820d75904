"""The first ledger: deposits, callbacks and reconciliation items.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Databases made by the earlier ``create_all`` hold exactly this schema: ``migrate``
stamps them at this revision instead of creating the tables again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Exact decimals: NUMERIC where the database has it, text on SQLite (no decimal type).
AMOUNT = sa.Numeric(18, 2).with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deposits",
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("phone_masked", sa.String(16), nullable=False),
        sa.Column("xprizo_status", sa.String(32), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("reference", name="pk_deposits"),
    )
    op.create_index("ix_deposits_outcome", "deposits", ["outcome"])
    op.create_index("ix_deposits_transaction_id", "deposits", ["transaction_id"])

    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("status_type", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callbacks"),
    )
    op.create_index("ix_callbacks_reference", "callbacks", ["reference"])
    op.create_index("ix_callbacks_result", "callbacks", ["result"])

    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("recorded_outcome", sa.String(16), nullable=False),
        sa.Column("conflicting_outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_items"),
    )
    op.create_index(
        "ix_reconciliation_items_reference", "reconciliation_items", ["reference"]
    )


def downgrade() -> None:
    op.drop_table("reconciliation_items")
    op.drop_table("callbacks")
    op.drop_table("deposits")
