"""Operator actions, settled needs_review outcomes and reported mismatches.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("deposits", sa.Column("mismatches", sa.Text(), nullable=True))
    op.add_column("deposits", sa.Column("resolved_at", TIMESTAMP, nullable=True))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_actions"),
    )
    op.create_index("ix_operator_actions_reference", "operator_actions", ["reference"])


def downgrade() -> None:
    op.drop_table("operator_actions")
    with op.batch_alter_table("deposits") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("mismatches")
