"""Login throttling per account and per client address; the session's last request (idle timeout).

``login_throttle`` holds recent failures and locks in the database, so every portal replica throttles
alike. ``usersession.last_seen_at`` starts at the session's creation for sessions opened before it.

Revision ID: 0009_login_throttling
Revises: 0008_callback_inbox
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_login_throttling"
down_revision: str | Sequence[str] | None = "0008_callback_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    op.create_index(
        op.f("ix_login_throttle_last_failure_at"), "login_throttle", ["last_failure_at"], unique=False
    )
    with op.batch_alter_table("usersession") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.execute(sa.text("UPDATE usersession SET last_seen_at = created_at"))
    with op.batch_alter_table("usersession") as batch:
        batch.alter_column("last_seen_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("usersession") as batch:
        batch.drop_column("last_seen_at")
    op.drop_index(op.f("ix_login_throttle_last_failure_at"), table_name="login_throttle")
    op.drop_table("login_throttle")
