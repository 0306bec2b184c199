"""Alembic environment, shared by the ``alembic`` command line and :func:`portnet.migrate.upgrade`.

The schema source is ``SQLModel.metadata`` (portnet.models). The URL comes from the Alembic config
when the caller set one (tests, ``portnet.migrate``), else from ``DATABASE_URL`` like the application,
so a bare ``alembic upgrade head`` migrates the database the portal actually uses.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import portnet.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from portnet.db import normalize_url
from portnet.models import MoneyType
from portnet.settings import get_settings

config = context.config

# Only the command line configures logging; the application keeps its own logging setup.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# Any constant shared by every migrating process: the web app, the worker and `make migrate` may start
# together, and on PostgreSQL the second one must wait and then find the schema already at head.
MIGRATION_LOCK_KEY = 0x504E_4D49  # "PNMI"


def database_url() -> str:
    return normalize_url(config.get_main_option("sqlalchemy.url") or get_settings().database_url)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Keeps generated migrations free of application types.

    A migration must replay the same DDL forever, even after ``MoneyType`` or SQLModel change, so
    the columns are written with the plain SQLAlchemy types they store as.
    """
    if type_ == "type":
        if isinstance(obj, MoneyType):
            return "sa.BigInteger()"
        if isinstance(obj, AutoString):
            return "sa.String()"
    return False


def _configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things: later migrations get copy-and-move batch operations.
        "render_as_batch": dialect_name == "sqlite",
        "render_item": render_item,
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_options(sa.engine.make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, **_configure_options(connection.dialect.name))
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Transaction-scoped: released by the migration's own COMMIT or ROLLBACK.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # A plain engine, not portnet.db.make_engine: no pool to leave behind, and none of the
    # application's per-connection pragmas (foreign_keys=ON would break SQLite table rebuilds).
    engine = sa.create_engine(database_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
