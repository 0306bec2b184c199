"""Each user's language (fr, ar, en) for the portal, their e-mails and their receipts.

Revision ID: 0016_user_language
Revises: 0015_receipt_codes
Create Date: 2026-11-30 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_user_language"
down_revision: str | Sequence[str] | None = "0015_receipt_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: never chosen; the portal then follows the browser's Accept-Language, mail is French.
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("language", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("language")
