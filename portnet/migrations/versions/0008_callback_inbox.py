"""Partner callbacks keep their raw body (at most 16 KB, card fields removed) and its SHA-256.

Revision ID: 0008_callback_inbox
Revises: 0007_search_indexes
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_callback_inbox"
down_revision: str | Sequence[str] | None = "0007_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("partnercallback") as batch:
        batch.add_column(sa.Column("raw_body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("raw_sha256", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("raw_truncated", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("partnercallback") as batch:
        batch.drop_column("raw_truncated")
        batch.drop_column("raw_sha256")
        batch.drop_column("raw_body")
