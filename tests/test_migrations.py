"""The migrations build exactly the schema of portnet.models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import portnet.models  # noqa: F401
from portnet import migrate
from tests.support.databases import fresh_database_url

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "portnet" / "migrations" / "versions"


@pytest.fixture
def empty_url() -> Iterator[str]:
    with fresh_database_url() as url:
        yield url


@pytest.fixture
def migrated_url(empty_url: str) -> str:
    migrate.upgrade(empty_url)
    return empty_url


def _diffs(url: str) -> list[object]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_gives_the_models_schema(migrated_url: str) -> None:
    assert _diffs(migrated_url) == []
    assert _tables(migrated_url) == set(SQLModel.metadata.tables) | {"alembic_version"}


def test_indexes_and_unique_constraints_are_created(migrated_url: str) -> None:
    engine = sa.create_engine(migrated_url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        for table in SQLModel.metadata.tables.values():
            expected = {index.name for index in table.indexes}
            assert expected <= {index["name"] for index in inspector.get_indexes(table.name)}, table.name
        invoice_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("invoice")}
        assert ("emitter_id", "number") in invoice_uniques
        message_uniques = {
            tuple(u["column_names"]) for u in inspector.get_unique_constraints("invoicemessage")
        }
        assert ("invoice_id", "seq") in message_uniques
        assert ("dedupe_key",) in message_uniques
        customs = [i for i in inspector.get_indexes("company") if i["name"] == "ix_company_customs_code"]
        assert customs and customs[0]["unique"]
    finally:
        engine.dispose()


def test_money_is_stored_as_big_integers(migrated_url: str) -> None:
    engine = sa.create_engine(migrated_url, poolclass=sa.pool.NullPool)
    try:
        columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("invoice")}
    finally:
        engine.dispose()
    for name in ("amount_ht", "amount_tva", "amount_ttc"):
        assert isinstance(columns[name], sa.BigInteger | sa.Integer), (name, columns[name])


def test_upgrade_is_idempotent_and_reaches_head(migrated_url: str) -> None:
    migrate.upgrade(migrated_url)
    assert migrate.current_revision(migrated_url) == migrate.head_revision() == "0015_receipt_codes"
    assert _diffs(migrated_url) == []


def test_sessions_opened_before_the_idle_timeout_get_their_creation_as_last_request(empty_url: str) -> None:
    command.upgrade(migrate.alembic_config(empty_url), "0007_search_indexes")
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO "user" (id, username, password_hash, role, must_change_password, is_active,'
                    " created_at) VALUES (1, 'old', 'x', 'client', false, true, '2026-11-01 08:00:00')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO usersession (token_hash, user_id, created_at, expires_at)"
                    " VALUES ('h', 1, '2026-11-01 08:00:00', '2026-11-01 16:00:00')"
                )
            )
        migrate.upgrade(empty_url)
        with engine.connect() as connection:
            seen = connection.execute(sa.text("SELECT last_seen_at FROM usersession")).scalar_one()
        assert str(seen).startswith("2026-11-01 08:00:00")
        assert _diffs(empty_url) == []
    finally:
        engine.dispose()


def test_databases_recorded_at_revision_0004_still_upgrade(empty_url: str) -> None:
    """0004's file was renamed, not its revision id: databases that recorded the id carry on from it."""
    assert (VERSIONS / "0004_fatourati_offline_finance.py").exists()
    command.upgrade(migrate.alembic_config(empty_url), "0004_issue4")
    assert migrate.current_revision(empty_url) == "0004_issue4"
    assert {"payment_channel_data", "unapplied_payment"} <= _tables(empty_url)
    migrate.upgrade(empty_url)
    assert migrate.current_revision(empty_url) == migrate.head_revision()
    assert _diffs(empty_url) == []


def test_unapplied_money_kept_before_its_channel_was_recorded_gets_its_partners(empty_url: str) -> None:
    """Fatourati's money came through Fatourati; Amanpay's without a channel was a cash code."""
    command.upgrade(migrate.alembic_config(empty_url), "0010_sent_mail")
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            for partner, number, channel in (
                ("fatourati", "FTROLD0001", None),
                ("amanpay", "amanpay:TSHOLD0001", None),
                ("amanpay", "amanpay:AMTOLD0001", "amanpay_amanty"),
            ):
                connection.execute(
                    sa.text(
                        "INSERT INTO unapplied_payment (partner, transaction_number, amount, reason, status,"
                        " channel, received_at) VALUES (:partner, :number, 12000, 'late', 'open', :channel,"
                        " CURRENT_TIMESTAMP)"
                    ),
                    {"partner": partner, "number": number, "channel": channel},
                )
        migrate.upgrade(empty_url)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT transaction_number, channel FROM unapplied_payment"))
            channels = {str(number): str(channel) for number, channel in rows}
    finally:
        engine.dispose()
    assert channels == {
        "FTROLD0001": "cmi_fatourati",
        "amanpay:TSHOLD0001": "amanpay_code",
        "amanpay:AMTOLD0001": "amanpay_amanty",
    }
    assert _diffs(empty_url) == []


def test_fresh_database_is_not_migrated(empty_url: str) -> None:
    assert migrate.current_revision(empty_url) is None


def test_downgrade_to_base_and_back(migrated_url: str) -> None:
    command.downgrade(migrate.alembic_config(migrated_url), "base")
    assert _tables(migrated_url) <= {"alembic_version"}
    migrate.upgrade(migrated_url)
    assert _diffs(migrated_url) == []


def test_upgrade_does_not_depend_on_the_working_directory(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(empty_url)
    assert migrate.current_revision(empty_url) == migrate.head_revision()


def test_sqlite_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'deeper' / 'portnet.db'}"
    migrate.upgrade(url)
    assert (tmp_path / "var" / "deeper" / "portnet.db").exists()


def test_alembic_command_line_uses_database_url(empty_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": empty_url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert migrate.current_revision(empty_url) == migrate.head_revision()


def test_migrations_do_not_import_application_types() -> None:
    """A migration must replay the same DDL after the models move on."""
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+(portnet|sqlmodel)\b", text, re.MULTILINE), path.name
        assert "MoneyType(" not in text and "AutoString(" not in text, path.name
    initial = (VERSIONS / "0001_initial.py").read_text(encoding="utf-8")
    for column in ("amount_ht", "amount_tva", "amount_ttc", "amount"):
        assert f"sa.Column('{column}', sa.BigInteger(), nullable=False)" in initial
