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
# The databases are bench/search_databases.py's, the searches bench/search_queries.py's.

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from typing import Any

from bench._common import markdown_table, say, write_results
from bench.search_databases import (
    SEED,
    build,
    create_indexes,
    parse_index,
    postgres_database,
    sqlite_analyze,
    sqlite_database,
)
from bench.search_queries import SearchResult, run_searches


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
