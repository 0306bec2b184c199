"""Fatourati references, offline (cheque and transfer) declarations, finance's unapplied payments.

Two new tables, nothing altered: ``payment_channel_data`` (one row per attempt that needs more than
the ``payment`` row every attempt has: the Fatourati reference and expiry, or the payer's
cheque/transfer declaration and finance's decision) and ``unapplied_payment`` (money no invoice took).

The revision id below is the one databases already recorded in ``alembic_version`` when this file
had another name: it must stay as is, or ``alembic upgrade`` would no longer find where they stand.

Revision ID: 0004_issue4
Revises: 0001
Create Date: 2026-11-27 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Kept as recorded in existing databases' alembic_version (see the docstring); do not rename.
revision: str = "0004_issue4"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_channel_data",
        sa.Column("payment_id", sa.String(), nullable=False),
        sa.Column("partner_reference", sa.String(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("declaration", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"]),
        sa.PrimaryKeyConstraint("payment_id"),
        sa.UniqueConstraint("partner_reference"),
    )
    op.create_table(
        "unapplied_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(), nullable=False),
        sa.Column("transaction_number", sa.String(), nullable=False),
        sa.Column("partner_reference", sa.String(), nullable=True),
        sa.Column("payment_id", sa.String(), nullable=True),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["callback_id"], ["partnercallback.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transaction_number"),
    )
    op.create_index(
        op.f("ix_unapplied_payment_partner_reference"),
        "unapplied_payment",
        ["partner_reference"],
        unique=False,
    )
    op.create_index(
        op.f("ix_unapplied_payment_payment_id"), "unapplied_payment", ["payment_id"], unique=False
    )
    op.create_index(op.f("ix_unapplied_payment_status"), "unapplied_payment", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_unapplied_payment_status"), table_name="unapplied_payment")
    op.drop_index(op.f("ix_unapplied_payment_payment_id"), table_name="unapplied_payment")
    op.drop_index(op.f("ix_unapplied_payment_partner_reference"), table_name="unapplied_payment")
    op.drop_table("unapplied_payment")
    op.drop_table("payment_channel_data")
