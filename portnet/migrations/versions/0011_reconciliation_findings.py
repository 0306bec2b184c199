"""Reconciliation's runs and findings: what each pass looked at, and every lost outcome it settled.

``reconciliation_run`` has one row per pass of the reconciliation workflow (its Temporal run id);
``reconciliation_finding`` one row per finding (unique ``dedupe_key``, so a second pass adds nothing),
with its kind, payment, partner, amount and outcome, for finance's report.

Revision ID: 0011_reconciliation_findings
Revises: 0010_sent_mail
Create Date: 2026-11-30 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_reconciliation_findings"
down_revision: str | Sequence[str] | None = "0010_sent_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_run",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_reconciliation_run_started_at"), "reconciliation_run", ["started_at"])
    op.create_table(
        "reconciliation_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("payment_id", sa.String(), nullable=True),
        sa.Column("partner", sa.String(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),  # centimes
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("unapplied_id", sa.Integer(), nullable=True),
        sa.Column("partner_transaction", sa.String(), nullable=True),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    for column in ("run_id", "kind", "outcome", "payment_id", "found_at"):
        op.create_index(
            op.f(f"ix_reconciliation_finding_{column}"), "reconciliation_finding", [column], unique=False
        )


def downgrade() -> None:
    for column in ("run_id", "kind", "outcome", "payment_id", "found_at"):
        op.drop_index(op.f(f"ix_reconciliation_finding_{column}"), table_name="reconciliation_finding")
    op.drop_table("reconciliation_finding")
    op.drop_index(op.f("ix_reconciliation_run_started_at"), table_name="reconciliation_run")
    op.drop_table("reconciliation_run")
