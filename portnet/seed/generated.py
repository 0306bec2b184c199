"""The demo's generated invoices: about 400 per demo company, the same ones on every run.

Drawn from ``random.Random(2026)`` over fixed dates, then written only where the (emitter, number)
is missing, so ``seed_demo`` can run on every start-up without duplicating or overwriting anything.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from sqlmodel import Session, select

from portnet.models import Company, Emitter, Invoice
from portnet.seed.catalogue import (
    GENERATION_END,
    GENERATION_START,
    PROFILES,
    BillingProfile,
    weighted_profiles,
)
from portnet.seed.generator import Batch, InvoiceGenerator
from portnet.seed.guide import COMPANIES, MARSAMAROC_CASA
from portnet.seed.writer import BulkWriter

DEMO_SEED = 2026
DEMO_INVOICES_PER_COMPANY = 400


def seed_generated(
    session: Session, emitters: dict[str, Emitter], companies: dict[str, Company], created: Counter[str]
) -> None:
    """~400 invoices per demo company, drawn the same way on every run; only missing ones are written."""
    rng = random.Random(DEMO_SEED)
    generator = InvoiceGenerator(
        rng,
        {code: e.id for code, e in emitters.items() if e.id is not None},
        {profile.code: profile.number_base for profile in PROFILES},
        GENERATION_START,
        GENERATION_END,
    )
    entries: list[tuple[int, Sequence[BillingProfile]]] = []
    for spec in COMPANIES:
        company_id = companies[spec.customs_code].id
        assert company_id is not None
        profiles = PROFILES
        if spec.customs_code == "1247":
            # TMTA's MARSAMAROC CASA invoices are fetched by the invoice-request feature.
            profiles = tuple(p for p in PROFILES if p.code != MARSAMAROC_CASA)
        weighted = weighted_profiles(profiles)
        entries.extend((company_id, weighted) for _ in range(DEMO_INVOICES_PER_COMPANY))
    batch = generator.batch(entries)

    # Keep only the invoices whose (emitter, number) is not stored yet, and their children.
    existing: set[tuple[int, str]] = set()
    for profile in PROFILES:
        emitter_id = emitters[profile.code].id
        last = generator.next_numbers[profile.code] - 1
        rows = session.exec(
            select(Invoice.emitter_id, Invoice.number).where(
                Invoice.emitter_id == emitter_id,
                Invoice.number >= f"{profile.number_base:08d}",
                Invoice.number <= f"{last:08d}",
            )
        ).all()
        existing.update((e, n) for e, n in rows)
    keep = [i for i, row in enumerate(batch.invoices) if (row[4], row[1]) not in existing]
    if not keep:
        return
    if len(keep) != len(batch.invoices):
        position = {old: new for new, old in enumerate(keep)}
        batch = Batch(
            [batch.invoices[i] for i in keep],
            [(position[r[0]], *r[1:]) for r in batch.lines if r[0] in position],
            [(position[r[0]], *r[1:]) for r in batch.messages if r[0] in position],
            [(position[r[0]], *r[1:]) for r in batch.documents if r[0] in position],
        )
    created.update(BulkWriter(session.connection()).write(batch))
