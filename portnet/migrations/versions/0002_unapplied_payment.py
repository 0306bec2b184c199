"""Unapplied payments: partner money that settled nothing (e.g. a cash code paid after its expiry).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unappliedpayment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(), nullable=False),
        sa.Column("partner_reference", sa.String(), nullable=False),
        sa.Column("payment_id", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("resolution", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_reference"),
    )
    op.create_index(op.f("ix_unappliedpayment_created_at"), "unappliedpayment", ["created_at"], unique=False)
    op.create_index(op.f("ix_unappliedpayment_payment_id"), "unappliedpayment", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_unappliedpayment_payment_id"), table_name="unappliedpayment")
    op.drop_index(op.f("ix_unappliedpayment_created_at"), table_name="unappliedpayment")
    op.drop_table("unappliedpayment")
