"""Schema migrations, run from code.

The Alembic configuration is built here rather than read from ``alembic.ini`` so that migrating
works from any working directory and from an installed package; ``alembic.ini`` is only for people
running the ``alembic`` command in a checkout.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from portnet import receipt_codes
from portnet.db import normalize_url
from portnet.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    url = normalize_url(url or get_settings().database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Config values go through ConfigParser interpolation: a '%' in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _ensure_sqlite_directory(url: str) -> None:
    """A fresh checkout has no ``var/``; SQLite would fail with "unable to open database file"."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        if not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Brings the database at ``url`` (default: ``DATABASE_URL``) to ``revision``; safe to repeat."""
    url = normalize_url(url or get_settings().database_url)
    _ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)
    issue_missing_receipt_codes(url)


def issue_missing_receipt_codes(url: str) -> int:
    """Records the verification code's hash of every settled payment that has none (those settled
    before receipts carried codes); how many. Run after the migrations: the code derives from
    SECRET_KEY (portnet/receipt_codes.py), which migrations do not read. Safe to repeat."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            if "receipt_code_hash" not in {c["name"] for c in sa.inspect(connection).get_columns("payment")}:
                return 0  # migrated to an older revision
            payment = sa.table(
                "payment", sa.column("id"), sa.column("status"), sa.column("receipt_code_hash")
            )
            missing = (
                connection.execute(
                    sa.select(payment.c.id).where(
                        payment.c.status == "succeeded", payment.c.receipt_code_hash.is_(None)
                    )
                )
                .scalars()
                .all()
            )
            if missing:
                secret_key = get_settings().secret_key
                connection.execute(
                    payment.update()
                    .where(payment.c.id == sa.bindparam("payment_id"))
                    .values(receipt_code_hash=sa.bindparam("code_hash")),
                    [
                        {
                            "payment_id": pid,
                            "code_hash": receipt_codes.code_hash(receipt_codes.receipt_code(pid, secret_key)),
                        }
                        for pid in missing
                    ],
                )
            return len(missing)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str | None = None) -> str | None:
    """What the database says it is at (None: never migrated); for health checks and tests."""
    engine = sa.create_engine(normalize_url(url or get_settings().database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
