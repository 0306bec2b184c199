"""A throw-away database for a test, on the backend the run is about.

``PORTNET_TEST_DATABASE=postgresql`` selects PostgreSQL (a new DATABASE per call on the server at
127.0.0.1:5432, so tests never see each other's schema or data); anything else, or nothing, selects a
SQLite file in a temporary directory. Both are empty: migrating is the caller's business, because
some tests are about the migrations themselves.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTNET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def backend() -> str:
    value = os.environ.get("PORTNET_TEST_DATABASE", "sqlite").strip().lower()
    if value in ("postgresql", "postgres", "pg"):
        return "postgresql"
    if value in ("", "sqlite"):
        return "sqlite"
    raise ValueError(f"PORTNET_TEST_DATABASE must be 'sqlite' or 'postgresql', not {value!r}")


@contextmanager
def fresh_database_url() -> Iterator[str]:
    """Yields the SQLAlchemy URL of a new, empty database and removes the database afterwards."""
    if backend() == "postgresql":
        yield from _postgres_database()
    else:
        yield from _sqlite_database()


def _sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="portnet-test-")
    try:
        yield f"sqlite:///{directory}/portnet.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _postgres_database() -> Iterator[str]:
    name = f"pn_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield (
                sa.engine.make_url(POSTGRES_ADMIN_URL)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            # FORCE: an engine the test forgot to dispose must not leave the database behind.
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
