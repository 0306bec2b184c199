"""MARSA MAROC invoice requests: the company's customer id at MARSA MAROC.

Revision ID: 0006_marsa
Revises: 0005_amanpay
Create Date: 2026-11-27 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_marsa"
down_revision: str | Sequence[str] | None = "0005_amanpay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("marsa_customer_id", sa.String(), nullable=True))
    # The guide's customer: TMTA is 000236 at MARSAMAROC CASA (a database seeded before this revision).
    op.execute(sa.text("UPDATE company SET marsa_customer_id = '000236' WHERE customs_code = '1247'"))


def downgrade() -> None:
    with op.batch_alter_table("company") as batch:
        batch.drop_column("marsa_customer_id")
