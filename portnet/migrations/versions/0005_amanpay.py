"""Amanpay's late cash payments join finance's unapplied payments: channel and payment time.

Revision ID: 0005_amanpay
Revises: 0004_issue4
Create Date: 2026-11-27 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_amanpay"
# 0004_fatourati_offline_finance.py, whose revision id keeps the name databases recorded.
down_revision: str | Sequence[str] | None = "0004_issue4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("unapplied_payment") as batch:
        batch.add_column(sa.Column("channel", sa.String(), nullable=True))
        batch.add_column(sa.Column("paid_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_unapplied_payment_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unapplied_payment") as batch:
        batch.drop_index("ix_unapplied_payment_received_at")
        batch.drop_column("paid_at")
        batch.drop_column("channel")
