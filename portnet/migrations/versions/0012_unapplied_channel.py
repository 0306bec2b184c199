"""Every unapplied payment records the channel it came through (applying it pays on that channel).

Rows kept before every writer recorded it get theirs from the partner: CMI Fatourati's money came
through Fatourati; Amanpay's without a channel were cash codes paid at Tashilat (the only Amanpay
money that reached us for an order we did not know). The column is then required.

Revision ID: 0012_unapplied_channel
Revises: 0011_reconciliation_findings
Create Date: 2026-11-30 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_unapplied_channel"
down_revision: str | Sequence[str] | None = "0011_reconciliation_findings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE unapplied_payment SET channel = CASE WHEN partner = 'fatourati' "
        "THEN 'cmi_fatourati' ELSE 'amanpay_code' END WHERE channel IS NULL"
    )
    with op.batch_alter_table("unapplied_payment") as batch:
        batch.alter_column("channel", existing_type=sa.String(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("unapplied_payment") as batch:
        batch.alter_column("channel", existing_type=sa.String(), nullable=True)
