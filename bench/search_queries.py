"""The searches of bench.search: a client's common invoice searches through the real API, the SQL
they issued (captured, explained, timed alone) and what each measured.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from bench._common import percentile, say

DEMO_PASSWORD = "Portnet2026!"  # noqa: S105 - the documented password of the seeded demo accounts
CLIENT = "sataa"  # the client whose searches are measured
SEARCHES = ("by number", "by status + date range", "by emitter", "unfiltered first page")
API_PATH = "/api/v1/invoices"
PAGE_PATH = "/factures"  # the portal's "Gestion des factures" list, same query string
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
            # The API, then the portal's invoice list (the same search, rendered as HTML).
            for search, path in [(s, API_PATH) for s in SEARCHES] + [(s, PAGE_PATH) for s in SEARCHES]:
                name = search if path == API_PATH else f"{search}, list page"
                example = params_for(search, rng, numbers)
                capture.statements, capture.on = [], True
                first = await http.get(path, params=example)
                capture.on = False
                first.raise_for_status()
                statements = capture.statements
                for _ in range(WARMUP_REQUESTS):
                    (await http.get(path, params=params_for(search, rng, numbers))).raise_for_status()
                latencies, totals = [], []
                for _ in range(repeat):
                    params = params_for(search, rng, numbers)
                    t = time.perf_counter()
                    response = await http.get(path, params=params)
                    latencies.append(time.perf_counter() - t)
                    response.raise_for_status()
                    if path == API_PATH:
                        totals.append(int(response.json()["total"]))
                for statement in statements:
                    explain(engine, statement)
                search = name
                result = SearchResult(search, latencies, totals, example, statements)
                say(
                    f"{search}: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                    f"p95 {percentile(latencies, 95) * 1000:.1f} ms"
                )
                results.append(result)
    finally:
        capture.close()
    return results
