"""Demo data for the portal, and bulk invoice generation for the benchmarks.

Everything here is deterministic: the demo is drawn from ``random.Random(2026)`` and written only
where its natural key (emitter code, customs code, username, emitter + invoice number) is missing, so
``seed_demo`` can run on every start-up and on a database people have already played with: it adds
what is missing and never overwrites (a demo user's changed password stays changed).

The modules, by what they hold:

- :mod:`~portnet.seed.guide`: the user guide's emitters, companies and invoices, exactly;
- :mod:`~portnet.seed.accounts`: the demo users;
- :mod:`~portnet.seed.catalogue`: how each emitter bills (prestations, prices, due days, numbering);
- :mod:`~portnet.seed.generator`: draws invoices from the catalogue as plain rows;
- :mod:`~portnet.seed.writer`: writes those rows fast (COPY on PostgreSQL, ``executemany`` on SQLite);
- :mod:`~portnet.seed.generated`: the demo's ~1,200 generated invoices;
- :mod:`~portnet.seed.history`: the payments of the paid ones, 00069321's earlier attempts;
- :mod:`~portnet.seed.bulk`: the benchmarks' bulk invoices (:func:`generate_invoices`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from portnet.marsa_terminals import ensure_terminal_emitters
from portnet.models import Company, Document, Emitter, Invoice, InvoiceMessage, PrestationLine, User
from portnet.seed.accounts import DEMO_PASSWORD, USERS, UserSpec, ensure_users
from portnet.seed.bulk import generate_invoices
from portnet.seed.catalogue import (
    BENCH_NUMBER_OFFSET,
    GENERATION_END,
    GENERATION_START,
    MAX_NUMBER,
    PROFILES,
)
from portnet.seed.generated import DEMO_INVOICES_PER_COMPANY, DEMO_SEED, seed_generated
from portnet.seed.guide import (
    ANP,
    BUREAU_VERITAS,
    COMPANIES,
    CREATION_MESSAGE,
    EMITTERS,
    GUIDE_INVOICES,
    MARSAMAROC_CASA,
    PORTNET,
    SODEP,
    TUV_RHEINLAND,
    CompanySpec,
    EmitterSpec,
    ensure_companies,
    ensure_emitters,
    ensure_guide_invoices,
    ice_check_digits,
)
from portnet.seed.history import ensure_guide_attempts, ensure_paid_history
from portnet.settings import get_settings

__all__ = [
    "ANP",
    "BENCH_NUMBER_OFFSET",
    "BUREAU_VERITAS",
    "COMPANIES",
    "CREATION_MESSAGE",
    "DEMO_INVOICES_PER_COMPANY",
    "DEMO_PASSWORD",
    "DEMO_SEED",
    "EMITTERS",
    "GENERATION_END",
    "GENERATION_START",
    "GUIDE_INVOICES",
    "MARSAMAROC_CASA",
    "MAX_NUMBER",
    "PORTNET",
    "PROFILES",
    "SODEP",
    "TUV_RHEINLAND",
    "USERS",
    "CompanySpec",
    "EmitterSpec",
    "UserSpec",
    "demo_counts",
    "ensure_emitters",
    "generate_invoices",
    "ice_check_digits",
    "seed_demo",
]


def seed_demo(session: Session) -> dict[str, int]:
    """Writes whatever part of the demo is missing, then commits; returns rows created per table.

    A second run returns all zeros and changes nothing.
    """
    created: Counter[str] = Counter()
    emitters = ensure_emitters(session, created)
    created["emitters"] += ensure_terminal_emitters(session, get_settings())
    companies = ensure_companies(session, created)
    ensure_users(session, companies, created)
    ensure_guide_invoices(session, emitters, companies, created)
    seed_generated(session, emitters, companies, created)
    ensure_guide_attempts(session, created)
    ensure_paid_history(session, created)
    session.commit()
    keys = ("emitters", "companies", "users", "invoices", "prestation_lines", "invoice_messages", "documents")
    return {key: created[key] for key in keys}


def demo_counts(session: Session) -> dict[str, int]:
    """Rows per table, for the ``seed`` command's summary and the tests."""
    tables: dict[str, Any] = {
        "emitters": Emitter,
        "companies": Company,
        "users": User,
        "invoices": Invoice,
        "prestation_lines": PrestationLine,
        "invoice_messages": InvoiceMessage,
        "documents": Document,
    }
    return {
        name: int(session.exec(select(sa.func.count()).select_from(model)).one())
        for name, model in tables.items()
    }
