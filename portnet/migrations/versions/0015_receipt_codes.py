"""Receipt verification codes: the hash of each receipt's code on its payment.

The payments already settled get their code's hash right after the migrations, in
``portnet.migrate.upgrade``: the code derives from SECRET_KEY (portnet/receipt_codes.py), which a
migration does not read.

Revision ID: 0015_receipt_codes
Revises: 0014_resets_access_requests
Create Date: 2026-11-30 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_receipt_codes"
down_revision: str | Sequence[str] | None = "0014_resets_access_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment", sa.Column("receipt_code_hash", sa.String(), nullable=True))
    op.create_index(op.f("ix_payment_receipt_code_hash"), "payment", ["receipt_code_hash"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_receipt_code_hash"), table_name="payment")
    with op.batch_alter_table("payment") as batch:
        batch.drop_column("receipt_code_hash")
