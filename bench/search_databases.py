"""The databases of bench.search: a new one per backend (a SQLite file, or a ``pn_bench_<random>``
PostgreSQL database dropped at the end), migrated, seeded and filled with generated invoices, and the
indexes and statistics a run may add to it.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._common import say

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTNET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CLIENT_CUSTOMS_CODE = "290240"  # sataa's company, whose invoices are searched
SEED = 20261127  # the generated invoices are the same at every run


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="pn-bench-search-")
    try:
        yield f"sqlite:///{directory}/portnet.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"pn_bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        say(f"created PostgreSQL database {name}")
        try:
            yield (
                sa.engine.make_url(POSTGRES_ADMIN_URL)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"dropped PostgreSQL database {name}")
    finally:
        admin.dispose()


def use_database(url: str) -> None:
    from portnet import db as portnet_db
    from portnet import settings as portnet_settings

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", f"bench-{secrets.token_hex(16)}")
    os.environ["PORTNET_ENV"] = "development"
    portnet_settings.get_settings.cache_clear()
    portnet_db._engine_for.cache_clear()


def database_size(engine: sa.Engine, url: str) -> int:
    if engine.dialect.name == "sqlite":
        path = Path(sa.engine.make_url(url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())


def build(url: str, rows: int) -> dict[str, Any]:
    """Migrated, seeded, plus ``rows`` generated invoices; returns what it cost."""
    from sqlmodel import Session, col, select

    from portnet import db as portnet_db
    from portnet.migrate import upgrade
    from portnet.models import Company
    from portnet.seed import COMPANIES, generate_invoices, seed_demo

    use_database(url)
    t = time.perf_counter()
    upgrade(url)
    engine = portnet_db.get_engine()
    with Session(engine) as session:
        seed_demo(session)
        session.commit()
        codes = [spec.customs_code for spec in COMPANIES]
        companies = {
            c.customs_code: c.id
            for c in session.exec(select(Company).where(col(Company.customs_code).in_(codes))).all()
        }
        company_ids = [companies[code] for code in codes if companies.get(code) is not None]
    setup_s = time.perf_counter() - t
    say(
        f"migrated and seeded in {setup_s:.1f} s; "
        f"generating {rows:,} invoices over {len(company_ids)} companies"
    )
    t = time.perf_counter()
    with Session(engine) as session:
        written = generate_invoices(
            session,
            [i for i in company_ids if i is not None],  # the three demo companies
            rows,
            random.Random(SEED),
            with_messages=False,
            with_documents=False,
        )
    generate_s = time.perf_counter() - t
    say(f"generated {written} in {generate_s:.1f} s")
    # PostgreSQL: what autovacuum would have done by the time users search (statistics, and the
    # visibility map that index-only scans need). SQLite: nothing, the application never runs ANALYZE.
    t = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
    maintenance_s = time.perf_counter() - t
    size = database_size(engine, url)
    return {
        "setup_seconds": round(setup_s, 2),
        "generate_seconds": round(generate_s, 2),
        "invoices_per_second": round(rows / generate_s) if generate_s else None,
        "rows_written": written,
        "vacuum_analyze_seconds": round(maintenance_s, 2) if engine.dialect.name == "postgresql" else None,
        "database_bytes": size,
        "client_company_id": companies[CLIENT_CUSTOMS_CODE],
    }


def sqlite_analyze() -> float:
    from portnet import db as portnet_db

    t = time.perf_counter()
    with portnet_db.get_engine().connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    return time.perf_counter() - t


def create_indexes(specs: list[tuple[str, list[str]]], analyze: bool) -> float:
    """What-if indexes on ``invoice`` in the throwaway database, then ANALYZE if asked."""
    from portnet import db as portnet_db

    engine = portnet_db.get_engine()
    t = time.perf_counter()
    with engine.connect() as connection:
        for name, columns in specs:
            connection.exec_driver_sql(f"CREATE INDEX {name} ON invoice ({', '.join(columns)})")
        if analyze:
            connection.exec_driver_sql("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE invoice")
        connection.commit()
    return time.perf_counter() - t


def parse_index(text: str) -> tuple[str, list[str]]:
    name, _, columns = text.partition("=")
    cols = [c.strip() for c in columns.split(",") if c.strip()]
    if not name.isidentifier() or not cols or not all(c.isidentifier() for c in cols):
        raise argparse.ArgumentTypeError(f"expected NAME=col1,col2,... (identifiers), not {text!r}")
    return name, cols
