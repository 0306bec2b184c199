"""Invoice search latency through the real API at a million invoices, on SQLite and on PostgreSQL.

For each backend: a new database (a SQLite file in a temporary directory; a ``pn_bench_<random>``
database on the PostgreSQL server at 127.0.0.1:5432, user postgres, dropped at the end), migrated
and seeded, then ``--rows`` invoices from ``portnet.seed.generate_invoices`` (with their prestation
lines, without messages nor documents) spread over the three demo companies; the cost of that
generation is measured and printed on its own.

Then, logged in as the client ``sataa`` (POST /api/v1/session) on ``create_app()``
through ``httpx.ASGITransport`` (no Temporal needed), ``--repeat`` sequential requests of each common
search of a client user: by number, by status + date range, by emitter, and the unfiltered first
page. For each search the SQL statements the API actually issued are captured and explained
(``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, COSTS OFF)`` on PostgreSQL) and timed alone.
SQLite is measured as the application leaves it (it never runs ANALYZE), then again after ANALYZE
(``--no-sqlite-analyze`` to skip); PostgreSQL after VACUUM ANALYZE, as autovacuum would leave it.

    python -m bench.search [--rows 1000000] [--backend sqlite|postgresql|both] [--repeat 200]

Prints Markdown tables and the plans, writes bench/results/search-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench._common import markdown_table, percentile, say, write_results

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTNET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DEMO_PASSWORD = "Portnet2026!"  # noqa: S105 - the documented password of the seeded demo accounts
CLIENT, CLIENT_CUSTOMS_CODE = "sataa", "290240"
SEED = 20261127
SEARCHES = ("by number", "by status + date range", "by emitter", "unfiltered first page")
# The emitters a client picks in the look-up (by code), and the statuses a client filters on.
EMITTER_CODES = ("611AGEN001", "611MARS001", "6110DOO116", "611BVER001", "611TUVR001")
STATUSES = ("unpaid", "paid")
DATE_SPAN = (date(2016, 1, 1), date(2026, 11, 20))
RANGE_DAYS = 90
WARMUP_REQUESTS = 10


@dataclass
class Statement:
    sql: str
    params: Any
    plan: list[str] = field(default_factory=list)
    alone_ms: float = float("nan")


@dataclass
class SearchResult:
    name: str
    latencies: list[float]
    totals: list[int]
    example: dict[str, str]
    statements: list[Statement]

    def summary(self) -> dict[str, Any]:
        return {
            "search": self.name,
            "requests": len(self.latencies),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p95_ms": round(percentile(self.latencies, 95) * 1000, 2),
            "max_ms": round(max(self.latencies) * 1000, 2),
            "mean_total_rows": round(statistics.fmean(self.totals), 1) if self.totals else 0,
            "example_params": self.example,
            "statements": [
                {"sql": " ".join(s.sql.split()), "alone_ms": round(s.alone_ms, 2), "plan": s.plan}
                for s in self.statements
            ],
            "warnings": plan_warnings(self.statements),
        }


# --- databases -----------------------------------------------------------------------------------


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


# --- the searches --------------------------------------------------------------------------------


def sample_numbers(company_id: int, count: int, rng: random.Random) -> list[str]:
    from portnet import db as portnet_db

    with portnet_db.get_engine().connect() as connection:
        numbers = [
            str(n)
            for n in connection.execute(
                sa.text("SELECT number FROM invoice WHERE company_id = :c AND id % 97 = 0 LIMIT 20000"),
                {"c": company_id},
            ).scalars()
        ]
    return rng.sample(numbers, min(count, len(numbers)))


def params_for(search: str, rng: random.Random, numbers: list[str]) -> dict[str, str]:
    if search == "by number":
        return {"number": rng.choice(numbers)}
    if search == "by status + date range":
        first = DATE_SPAN[0] + timedelta(days=rng.randrange((DATE_SPAN[1] - DATE_SPAN[0]).days - RANGE_DAYS))
        return {
            "status": rng.choice(STATUSES),
            "date_from": first.isoformat(),
            "date_to": (first + timedelta(days=RANGE_DAYS - 1)).isoformat(),
        }
    if search == "by emitter":
        return {"emitter": rng.choice(EMITTER_CODES)}
    return {}


class Capture:
    """The statements on the invoice table that the API sends while it is on."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.on = False
        self.statements: list[Statement] = []
        sa.event.listen(engine, "before_cursor_execute", self._hook)

    def _hook(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.on and "FROM invoice" in statement:
            self.statements.append(Statement(statement, parameters))

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._hook)


def explain(engine: sa.Engine, statement: Statement) -> None:
    """The plan of one captured statement, and its own time (median of 5) without the API around it."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, statement.params).all()
            depth: dict[int, int] = {0: 0}
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                statement.plan.append("  " * (depth[node] - 1) + str(detail))
        else:
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF) " + statement.sql, statement.params
            ).all()
            statement.plan = [str(r[0]) for r in rows]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            connection.exec_driver_sql(statement.sql, statement.params).all()
            times.append(time.perf_counter() - t)
        statement.alone_ms = statistics.median(times) * 1000


def plan_warnings(statements: list[Statement]) -> list[str]:
    """What in a plan says "no usable index": a full scan, a sort of the whole result."""
    warnings = []
    for s in statements:
        for line in s.plan:
            text = line.strip()
            if text.startswith("SCAN ") and not text.startswith(
                ("SCAN CONSTANT", "SCAN emitter", "SCAN company")
            ):
                warnings.append(f"full scan: {text}")
            if "TEMP B-TREE" in text:
                warnings.append(f"sort without index: {text}")
            if "Seq Scan on invoice" in text:
                warnings.append(f"full scan: {text}")
    return warnings


async def run_searches(repeat: int, company_id: int, rng: random.Random) -> list[SearchResult]:
    from portnet import db as portnet_db
    from portnet.settings import get_settings
    from web.app import create_app

    app = create_app(get_settings())
    engine = portnet_db.get_engine()
    numbers = sample_numbers(company_id, 1000, rng)
    capture = Capture(engine)
    results = []
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=120
        ) as http:
            login = await http.post("/api/v1/session", json={"username": CLIENT, "password": DEMO_PASSWORD})
            login.raise_for_status()
            for search in SEARCHES:
                example = params_for(search, rng, numbers)
                capture.statements, capture.on = [], True
                first = await http.get("/api/v1/invoices", params=example)
                capture.on = False
                first.raise_for_status()
                statements = capture.statements
                for _ in range(WARMUP_REQUESTS):
                    (
                        await http.get("/api/v1/invoices", params=params_for(search, rng, numbers))
                    ).raise_for_status()
                latencies, totals = [], []
                for _ in range(repeat):
                    params = params_for(search, rng, numbers)
                    t = time.perf_counter()
                    response = await http.get("/api/v1/invoices", params=params)
                    latencies.append(time.perf_counter() - t)
                    response.raise_for_status()
                    totals.append(int(response.json()["total"]))
                for statement in statements:
                    explain(engine, statement)
                result = SearchResult(search, latencies, totals, example, statements)
                say(
                    f"{search}: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                    f"p95 {percentile(latencies, 95) * 1000:.1f} ms"
                )
                results.append(result)
    finally:
        capture.close()
    return results


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


def run_backend(
    backend: str,
    rows: int,
    repeat: int,
    analyze_sqlite: bool,
    try_indexes: list[tuple[str, list[str]]] | None = None,
) -> list[dict[str, Any]]:
    """One run on the database as generated; on SQLite, another after ANALYZE if asked; then another
    with the what-if indexes, if any."""
    from portnet import db as portnet_db

    say(f"=== {backend}: {rows:,} invoices ===")
    database = sqlite_database() if backend == "sqlite" else postgres_database()
    saved = os.environ.get("DATABASE_URL")
    runs: list[dict[str, Any]] = []
    measured: list[list[SearchResult]] = []
    try:
        with database as url:
            try:
                cost = build(url, rows)
                company_id = cost["client_company_id"]
                results = asyncio.run(run_searches(repeat, company_id, random.Random(SEED + 1)))
                runs.append({"backend": backend, "rows": rows, "generation": cost})
                measured.append(results)
                if backend == "sqlite" and analyze_sqlite:
                    seconds = sqlite_analyze()
                    say(f"SQLite ANALYZE in {seconds:.1f} s; measuring again")
                    again = asyncio.run(run_searches(repeat, company_id, random.Random(SEED + 1)))
                    cost = {**cost, "analyze_seconds": round(seconds, 2)}
                    runs.append({"backend": "sqlite + ANALYZE", "rows": rows, "generation": cost})
                    measured.append(again)
                if try_indexes:
                    # PostgreSQL: autovacuum would analyze; SQLite: only if the run above did.
                    seconds = create_indexes(try_indexes, analyze=backend != "sqlite" or analyze_sqlite)
                    label = f"{runs[-1]['backend']} + {', '.join(name for name, _ in try_indexes)}"
                    say(f"what-if indexes created in {seconds:.1f} s; measuring again")
                    again = asyncio.run(run_searches(repeat, company_id, random.Random(SEED + 1)))
                    what_if = {
                        **cost,
                        "what_if_indexes": dict(try_indexes),
                        "index_seconds": round(seconds, 2),
                    }
                    runs.append({"backend": label, "rows": rows, "generation": what_if})
                    measured.append(again)
            finally:
                portnet_db.get_engine().dispose()
                portnet_db._engine_for.cache_clear()
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
    for run, results in zip(runs, measured, strict=True):
        run["searches"] = [r.summary() for r in results]
    return runs


# --- report ----------------------------------------------------------------------------------------


def report(runs: list[dict[str, Any]]) -> str:
    out = []
    rows = [
        [
            r["backend"],
            f"{r['rows']:,}",
            s["search"],
            s["requests"],
            s["p50_ms"],
            s["p95_ms"],
            f"{s['mean_total_rows']:,.0f}",
        ]
        for r in runs
        for s in r["searches"]
    ]
    headers = ["backend", "invoices", "search", "requests", "p50 ms", "p95 ms", "mean total"]
    out += [markdown_table(headers, rows), "", "Generation (not part of the latencies):", ""]
    gen_rows = []
    for r in runs:
        g = r["generation"]
        if " + " in r["backend"]:
            continue
        analyze = g.get("vacuum_analyze_seconds") or next(
            (
                x["generation"].get("analyze_seconds")
                for x in runs
                if x["backend"] == f"{r['backend']} + ANALYZE"
            ),
            None,
        )
        gen_rows.append(
            [
                r["backend"],
                f"{r['rows']:,}",
                g["generate_seconds"],
                f"{g['invoices_per_second']:,}",
                "-" if analyze is None else analyze,
                f"{g['database_bytes'] / 1e6:,.0f} MB",
            ]
        )
    headers = ["backend", "invoices", "generate s", "invoices/s", "(VACUUM) ANALYZE s", "database size"]
    out.append(markdown_table(headers, gen_rows))
    for r in runs:
        for s in r["searches"]:
            out += [
                "",
                f"Plans, {r['backend']}, {s['search']} (e.g. {s['example_params'] or 'no filter'}):",
                "",
            ]
            out.append("```")
            for st in s["statements"]:
                kind = "count" if "count(" in st["sql"].lower() else "page"
                out.append(f"-- {kind} query ({st['alone_ms']:.1f} ms alone)")
                out.extend(st["plan"])
            out.append("```")
            out += [f"- WARNING {warning}" for warning in s["warnings"]]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="invoices to generate")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=200, help="measured requests per search")
    parser.add_argument(
        "--sqlite-analyze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on SQLite, measure again after ANALYZE",
    )
    parser.add_argument(
        "--try-index",
        action="append",
        type=parse_index,
        default=[],
        metavar="NAME=COL,COL",
        help="what-if: create this index on invoice in the benchmark database and measure again",
    )
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.repeat < 1:
        parser.error("--rows >= 1000 and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    runs = [
        run
        for backend in backends
        for run in run_backend(backend, args.rows, args.repeat, args.sqlite_analyze, args.try_index)
    ]
    text = report(runs)
    print(text, flush=True)
    path = write_results(
        "search", {"ok": True, "rows": args.rows, "repeat": args.repeat, "runs": runs, "markdown": text}, argv
    )
    say(f"results written to {path}")
    return {"ok": True, "runs": runs}


if __name__ == "__main__":
    main()
    sys.exit(0)
