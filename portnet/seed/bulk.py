"""The benchmarks' bulk invoices: as many realistic invoices as asked, on top of the demo.

``bench/search.py`` fills a database with a million of them through :func:`generate_invoices`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from portnet.models import Emitter, Invoice
from portnet.seed.catalogue import (
    BENCH_NUMBER_OFFSET,
    GENERATION_END,
    GENERATION_START,
    PROFILES,
    weighted_profiles,
)
from portnet.seed.generator import InvoiceGenerator
from portnet.seed.guide import ensure_emitters
from portnet.seed.writer import BulkWriter


def _next_free_numbers(session: Session, emitters: dict[str, Emitter]) -> dict[str, int]:
    """Above both the demo range and anything already stored for the emitter."""
    numbers: dict[str, int] = {}
    for profile in PROFILES:
        highest = session.exec(
            select(sa.func.max(Invoice.number)).where(
                Invoice.emitter_id == emitters[profile.code].id,
                sa.func.length(Invoice.number) == 8,
            )
        ).one()
        floor = profile.number_base + BENCH_NUMBER_OFFSET
        current = int(highest) + 1 if highest and highest.isdigit() else 0
        numbers[profile.code] = max(floor, current)
    return numbers


def generate_invoices(
    session: Session,
    company_ids: Sequence[int],
    count: int,
    rng: random.Random,
    *,
    batch_size: int = 10_000,
    with_lines: bool = True,
    with_messages: bool = True,
    with_documents: bool = True,
    start: date = GENERATION_START,
    end: date = GENERATION_END,
) -> dict[str, int]:
    """Adds ``count`` realistic invoices spread over ``company_ids``, committing every batch.

    For the benchmarks (1,000,000 invoices): rows are built as tuples and written with COPY
    (PostgreSQL) or ``executemany`` (SQLite), one transaction per ``batch_size`` invoices so memory
    stays flat and an interrupted run keeps what it wrote. Numbers continue after the highest one of
    each emitter (and at least 500,000 above the demo range), so it can run on top of ``seed_demo``
    and be run again. The emitters are created if missing. Same ``rng`` state, same database state:
    same rows. Returns how many rows went into each table.
    """
    if not company_ids:
        raise ValueError("generate_invoices needs at least one company id")
    emitters = ensure_emitters(session)
    session.commit()
    generator = InvoiceGenerator(
        rng,
        {code: e.id for code, e in emitters.items() if e.id is not None},
        _next_free_numbers(session, emitters),
        start,
        end,
    )
    weighted = weighted_profiles(PROFILES)
    ids = list(company_ids)
    rand = rng.random
    totals: Counter[str] = Counter()
    for done in range(0, count, batch_size):
        entries = [(ids[int(rand() * len(ids))], weighted) for _ in range(min(batch_size, count - done))]
        batch = generator.batch(
            entries, with_lines=with_lines, with_messages=with_messages, with_documents=with_documents
        )
        totals.update(BulkWriter(session.connection()).write(batch))
        session.commit()
    return {key: totals[key] for key in ("invoices", "prestation_lines", "invoice_messages", "documents")}
