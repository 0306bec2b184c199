"""Demo data for the portal, and bulk invoice generation for the benchmarks.

Everything here is deterministic: the demo is drawn from ``random.Random(2026)`` and written only
where its natural key (emitter code, customs code, username, emitter + invoice number) is missing, so
``seed_demo`` can run on every start-up and on a database people have already played with: it adds
what is missing and never overwrites (a demo user's changed password stays changed).

Names, codes and amounts of the guide ("Guide utilisateur - paiement des factures") are reproduced
exactly: SATAA's 00069321 and ASKA's 00028653 from PORTNET, the emitter look-up of PORTNET and ANP.
TMTA's MARSAMAROC CASA invoices are *not* here: they arrive through the invoice-request feature.

Bulk rows go through SQLAlchemy Core on the session's connection (no ORM objects): a COPY on
PostgreSQL, a plain DB-API ``executemany`` on SQLite, after the same bind processing the ORM would
apply (``MoneyType`` centimes, SQLite's datetime text format), so the rows read back exactly like
ORM-written ones.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from portnet.models import (
    Company,
    Document,
    Emitter,
    Invoice,
    InvoiceMessage,
    MoneyType,
    PrestationLine,
    User,
)
from portnet.money import CENT
from portnet.security import hash_password
from portnet.statuses import InvoiceStatus, InvoiceType, MessageFunction, Role

__all__ = [
    "ANP",
    "BUREAU_VERITAS",
    "DEMO_PASSWORD",
    "GENERATION_END",
    "GENERATION_START",
    "MARSAMAROC_CASA",
    "PORTNET",
    "TUV_RHEINLAND",
    "demo_counts",
    "ensure_emitters",
    "generate_invoices",
    "ice_check_digits",
    "seed_demo",
]

DEMO_PASSWORD = "Portnet2026!"  # noqa: S105  (published in the README, demo accounts only)
DEMO_SEED = 2026

# Fixed, not "today": the same seed must give the same rows whatever the date of the run.
GENERATION_START = date(2016, 1, 1)
GENERATION_END = date(2026, 11, 20)

PORTNET = "6110DOO116"
ANP = "611AGEN001"
MARSAMAROC_CASA = "611MARS001"
BUREAU_VERITAS = "611BVER001"
TUV_RHEINLAND = "611TUVR001"
SODEP = "611SODP001"

# The guide's first message of every invoice.
CREATION_MESSAGE = {
    "function": MessageFunction.INV.value,
    "name": "INV_115",
    "receiver": "PortNet",
    "observations": "Création de la Facture",
}

# -- reference data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmitterSpec:
    code: str
    name: str
    cin: str | None
    rc_centre: str | None
    rc_number: str | None
    ifu: str | None
    address: str
    active: bool = True
    settles_directly: bool = False


EMITTERS: tuple[EmitterSpec, ...] = (
    # The guide's look-up table, with its test placeholders replaced by realistic values where the
    # guide shows "ok" / "Test adress ANP".
    EmitterSpec(PORTNET, "PORTNET", "1123131", "122", "123", "123", "Casablanca", settles_directly=True),
    EmitterSpec(
        ANP,
        "ANP",
        "B123131231",
        "Casablanca",
        "R23242342",
        "1232424244",
        "300, Lotissement Mandarona, Sidi Maârouf, 20270 Casablanca",
    ),
    EmitterSpec(
        MARSAMAROC_CASA,
        "MARSAMAROC CASA",
        None,
        "Casablanca",
        "R38591",
        "1084236",
        "175, Boulevard Mohamed Zerktouni, 20100 Casablanca",
    ),
    EmitterSpec(
        BUREAU_VERITAS,
        "Bureau Veritas",
        None,
        "Casablanca",
        "R41273",
        "1017593",
        "Immeuble Zénith, Lotissement Attawfiq, Sidi Maârouf, 20270 Casablanca",
    ),
    EmitterSpec(
        TUV_RHEINLAND,
        "TUV Rheinland",
        None,
        "Casablanca",
        "R187345",
        "15283746",
        "Technopark, Route de Nouaceur, 20150 Casablanca",
    ),
    # SODEP ran the ports until the 2006 reform split it into ANP and MARSA MAROC: an emitter that
    # still exists in the reference data but must not be offered any more.
    EmitterSpec(
        SODEP,
        "SODEP",
        None,
        "Casablanca",
        "R9867",
        "1002345",
        "Boulevard des Almohades, 20000 Casablanca",
        active=False,
    ),
)


@dataclass(frozen=True)
class CompanySpec:
    customs_code: str
    name: str
    ice_base: str  # 9 digits for the enterprise + 4 for the establishment; check digits are computed
    address: str
    email: str
    subscription_end: date
    marsa_customer_id: str | None = None


COMPANIES: tuple[CompanySpec, ...] = (
    CompanySpec(
        "290240",
        "SATAA IMPORT EXPORT SARL AU",
        "0017482930000",
        "Lot 112, Zone industrielle Ouled Saleh, 27182 Bouskoura",
        "comptabilite@sataa.ma",
        date(2027, 10, 30),
    ),
    CompanySpec(
        "93583",
        "ASKA IMPRT EXPORT",
        "0021593740000",
        "45, Boulevard Mohammed V, 90000 Tanger",
        "comptabilite@aska.ma",
        date(2027, 3, 25),
    ),
    CompanySpec(
        "1247",
        "TMTA",
        "0009871650000",
        "Zone portuaire, Boulevard des Almohades, 20250 Casablanca",
        "comptabilite@tmta.ma",
        date(2026, 12, 31),
        marsa_customer_id="000236",
    ),
)


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: Role
    customs_code: str | None
    full_name: str
    email: str


USERS: tuple[UserSpec, ...] = (
    UserSpec("sataa", Role.CLIENT, "290240", "Comptabilité SATAA", "sataa@demo.portnet.ma"),
    UserSpec("aska", Role.CLIENT, "93583", "Comptabilité ASKA", "aska@demo.portnet.ma"),
    UserSpec("tmta", Role.CLIENT, "1247", "Comptabilité TMTA", "tmta@demo.portnet.ma"),
    UserSpec("finance", Role.FINANCE, None, "Direction financière PortNet", "finance@demo.portnet.ma"),
    UserSpec("admin", Role.ADMIN, None, "Administrateur PortNet", "admin@demo.portnet.ma"),
)


def ice_check_digits(base13: str) -> str:
    """The two ICE control digits: the 15-digit number must be divisible by 97 (``stdnum.ma.ice``)."""
    if len(base13) != 13 or not base13.isdigit():
        raise ValueError(f"an ICE base is 13 digits: {base13!r}")
    return f"{(-int(base13) * 100) % 97:02d}"


# -- invoice catalogue ------------------------------------------------------------------------------

_CARRIERS = ("MEDU", "MSCU", "MAEU", "CMAU", "HLCU", "CSNU", "ONEU", "EGLV")
_ANP_PORTS = ("CAS", "MOH", "JLF", "AGA", "SAF", "NAD")
_CUSTOMS_OFFICES = ("300", "301", "309", "400", "401", "500")


# Generators draw with ``int(random() * n)`` rather than ``randrange``: three times cheaper, which
# matters at a million invoices, and just as deterministic.


def _bill_of_lading(rand: Callable[[], float], year: int) -> str:
    return f"{_CARRIERS[int(rand() * len(_CARRIERS))]}{int(rand() * 10**7):07d}"


def _escale(rand: Callable[[], float], year: int) -> str:
    return f"ESC-{_ANP_PORTS[int(rand() * len(_ANP_PORTS))]}-{year}-{1 + int(rand() * 19999):05d}"


def _dum(rand: Callable[[], float], year: int) -> str:
    office = _CUSTOMS_OFFICES[int(rand() * len(_CUSTOMS_OFFICES))]
    return f"DUM {office}-010-{year}-{1 + int(rand() * 9999999):07d}"


def _bv_certificate(rand: Callable[[], float], year: int) -> str:
    return f"COC-BV-{year}-{1 + int(rand() * 999999):06d}"


def _tuv_certificate(rand: Callable[[], float], year: int) -> str:
    return f"TUV-MA-{year}-{1 + int(rand() * 999999):06d}"


_SUBSCRIPTIONS = ("Abonnement annuel IMP", "Abonnement annuel EXP", "Abonnement annuel IMP-EXP")


def _subscription(rand: Callable[[], float], year: int) -> str:
    return _SUBSCRIPTIONS[int(rand() * len(_SUBSCRIPTIONS))]


@dataclass(frozen=True)
class _Item:
    prestation: str
    operation_types: tuple[str, ...]
    reference: Callable[[Callable[[], float], int], str]
    min_cents: int
    max_cents: int


@dataclass(frozen=True)
class _Profile:
    """How one emitter bills: what, how much, when it is due and how it may be paid."""

    code: str
    weight: int
    payment_methods: str
    due_days: int
    items: tuple[_Item, ...]
    # Demo numbers start here; generate_invoices() continues half a million higher.
    number_base: int
    subscription: _Item | None = None
    settles_directly: bool = False


_SUBSCRIPTION = _Item("Abonnement Portnet", ("Abonnement PORTNET",), _subscription, 300000, 300000)

PROFILES: tuple[_Profile, ...] = (
    _Profile(
        PORTNET,
        15,
        "cmi,amanpay,cheque,virement",
        60,
        (
            _Item("Titre d'importation", ("Engagement d'importation",), _dum, 15000, 60000),
            _Item("Dépôt manifeste", ("Escale navire",), _escale, 20000, 90000),
        ),
        number_base=100_000,
        subscription=_SUBSCRIPTION,
        settles_directly=True,
    ),
    _Profile(
        ANP,
        35,
        "cmi,amanpay,virement",
        30,
        (
            _Item("Redevance marchandises", ("Import", "Export"), _bill_of_lading, 30000, 2500000),
            _Item("Droits de port", ("Escale navire",), _escale, 150000, 4500000),
            _Item("Redevance d'usage des quais", ("Escale navire",), _escale, 80000, 1200000),
        ),
        number_base=10_000_000,
    ),
    _Profile(
        MARSAMAROC_CASA,
        25,
        "cmi",
        30,
        (
            _Item("Manutention conteneur", ("Débarquement", "Embarquement"), _bill_of_lading, 4000, 1500000),
            _Item("Magasinage", ("Import",), _bill_of_lading, 2000, 600000),
            _Item("Pesage conteneur", ("Export",), _bill_of_lading, 3500, 40000),
        ),
        # Far above the 02xxxxxx-03xxxxxx numbers MARSA MAROC's own system returns in the guide.
        number_base=7_000_000,
    ),
    _Profile(
        BUREAU_VERITAS,
        13,
        "cmi,virement",
        30,
        (
            _Item("Contrôle technique", ("Inspection",), _dum, 60000, 900000),
            _Item("Certificat de conformité", ("Export", "Import"), _bv_certificate, 45000, 350000),
        ),
        number_base=20_000_000,
    ),
    _Profile(
        TUV_RHEINLAND,
        12,
        "cmi,cheque,virement",
        45,
        (
            _Item("Contrôle technique", ("Inspection",), _dum, 55000, 850000),
            _Item("Certificat de conformité", ("Import",), _tuv_certificate, 40000, 300000),
        ),
        number_base=30_000_000,
    ),
)

BENCH_NUMBER_OFFSET = 500_000
MAX_NUMBER = 99_999_999

_VAT_RATES = (Decimal("0.20"), Decimal("0.14"), Decimal("0.10"), Decimal("0.07"))


def _percent_table(weighted: Iterable[tuple[Any, int]]) -> tuple[Any, ...]:
    """100 slots, one per percent: a draw is one index instead of a bisect."""
    table = tuple(value for value, weight in weighted for _ in range(weight))
    assert len(table) == 100
    return table


_VAT_TABLE = _percent_table(zip(_VAT_RATES, (85, 7, 5, 3), strict=True))

_S = InvoiceStatus
# Older invoices have had time to be paid; recent ones are mostly waiting.
_OLD_STATUS_TABLE = _percent_table(
    (
        (_S.UNPAID.value, 45),
        (_S.PAID.value, 38),
        (_S.PAYMENT_CONFIRMED.value, 4),
        (_S.AWAITING_PARTNER.value, 4),
        (_S.BLOCKED.value, 3),
        (_S.CANCELLED.value, 6),
    )
)
_RECENT_STATUS_TABLE = _percent_table(
    (
        (_S.UNPAID.value, 72),
        (_S.PAID.value, 14),
        (_S.PAYMENT_CONFIRMED.value, 4),
        (_S.AWAITING_PARTNER.value, 4),
        (_S.BLOCKED.value, 2),
        (_S.CANCELLED.value, 4),
    )
)
_AWAITING_PARTNER = _S.AWAITING_PARTNER.value
_PAID = _S.PAID.value
_CANCELLED = _S.CANCELLED.value
_PRINCIPALE = InvoiceType.PRINCIPALE.value
_AVOIR = InvoiceType.AVOIR.value
_COMPLEMENTAIRE = InvoiceType.COMPLEMENTAIRE.value
_ONE_DAY = timedelta(days=1)
_DAYS = tuple(timedelta(days=n) for n in range(15))


# -- idempotent reference rows ----------------------------------------------------------------------


def ensure_emitters(session: Session, created: Counter[str] | None = None) -> dict[str, Emitter]:
    """The emitters of the guide, by code; existing rows are returned untouched."""
    existing = {e.code: e for e in session.exec(select(Emitter)).all()}
    for spec in EMITTERS:
        if spec.code in existing:
            continue
        emitter = Emitter(
            code=spec.code,
            name=spec.name,
            cin=spec.cin,
            rc_centre=spec.rc_centre,
            rc_number=spec.rc_number,
            ifu=spec.ifu,
            address=spec.address,
            active=spec.active,
            settles_directly=spec.settles_directly,
        )
        session.add(emitter)
        existing[spec.code] = emitter
        if created is not None:
            created["emitters"] += 1
    session.flush()
    return existing


def _ensure_companies(session: Session, created: Counter[str]) -> dict[str, Company]:
    existing = {c.customs_code: c for c in session.exec(select(Company)).all()}
    for spec in COMPANIES:
        if spec.customs_code in existing:
            continue
        company = Company(
            name=spec.name,
            customs_code=spec.customs_code,
            ice=spec.ice_base + ice_check_digits(spec.ice_base),
            address=spec.address,
            email=spec.email,
            subscription_end=spec.subscription_end,
            marsa_customer_id=spec.marsa_customer_id,
        )
        session.add(company)
        existing[spec.customs_code] = company
        created["companies"] += 1
    session.flush()
    return existing


@lru_cache(maxsize=1)
def _demo_password_hash() -> str:
    """One argon2id hash shared by the demo accounts.

    Their password is published in the README, so distinct salts protect nothing, while each hash
    costs a few hundred milliseconds on every fresh test database.
    """
    return hash_password(DEMO_PASSWORD)


def _ensure_users(session: Session, companies: dict[str, Company], created: Counter[str]) -> None:
    existing = set(session.exec(select(User.username)).all())
    for spec in USERS:
        if spec.username in existing:
            continue
        session.add(
            User(
                username=spec.username,
                password_hash=_demo_password_hash(),
                role=spec.role.value,
                company_id=companies[spec.customs_code].id if spec.customs_code else None,
                full_name=spec.full_name,
                email=spec.email,
                must_change_password=False,
            )
        )
        created["users"] += 1
    session.flush()


# -- the guide's invoices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _GuideInvoice:
    customs_code: str
    emitter_code: str
    number: str
    invoice_date: datetime
    due_date: datetime
    amount_ht: Decimal
    amount_tva: Decimal
    payment_methods: str
    description: str
    lines: tuple[tuple[str, str, str, datetime], ...]
    created_at: datetime
    document_number: int
    is_subscription: bool = False


GUIDE_INVOICES: tuple[_GuideInvoice, ...] = (
    _GuideInvoice(
        "290240",
        PORTNET,
        "00069321",
        datetime(2017, 10, 31),
        datetime(2017, 12, 30),
        Decimal("3000.00"),
        Decimal("600.00"),
        "cmi,amanpay,cheque,virement",
        "[REN]Abonnement annuel IMP",
        (("Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel IMP", datetime(2017, 10, 30)),),
        created_at=datetime(2017, 11, 1, 11, 49),
        document_number=242,
        is_subscription=True,
    ),
    _GuideInvoice(
        "93583",
        PORTNET,
        "00028653",
        datetime(2016, 3, 26),
        datetime(2016, 5, 25),
        Decimal("3000.00"),
        Decimal("600.00"),
        "cmi,amanpay,cheque",
        "[REN]Abonnement annuel IMP",
        (("Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel IMP", datetime(2016, 3, 25)),),
        created_at=datetime(2016, 3, 27, 9, 12),
        document_number=97,
        is_subscription=True,
    ),
    # TMTA: a few current PORTNET / ANP invoices (its MARSAMAROC CASA ones are requested, not seeded).
    _GuideInvoice(
        "1247",
        PORTNET,
        "00094217",
        datetime(2026, 10, 1),
        datetime(2026, 11, 30),
        Decimal("3000.00"),
        Decimal("600.00"),
        "cmi,amanpay,cheque,virement",
        "[REN]Abonnement annuel EXP",
        (("Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel EXP", datetime(2026, 9, 30)),),
        created_at=datetime(2026, 10, 2, 10, 5),
        document_number=8812,
        is_subscription=True,
    ),
    _GuideInvoice(
        "1247",
        ANP,
        "09845120",
        datetime(2026, 10, 14),
        datetime(2026, 11, 13),
        Decimal("1250.40"),
        Decimal("250.08"),
        "cmi,amanpay,virement",
        "Redevance marchandises Import MSCU4821937",
        (("Redevance marchandises", "Import", "MSCU4821937", datetime(2026, 10, 12)),),
        created_at=datetime(2026, 10, 15, 8, 37),
        document_number=8890,
    ),
    _GuideInvoice(
        "1247",
        ANP,
        "09851377",
        datetime(2026, 11, 2),
        datetime(2026, 12, 2),
        Decimal("4870.00"),
        Decimal("974.00"),
        "cmi,amanpay,virement",
        "Droits de port Escale navire ESC-CAS-2026-04512",
        (
            ("Droits de port", "Escale navire", "ESC-CAS-2026-04512", datetime(2026, 10, 30)),
            ("Redevance d'usage des quais", "Escale navire", "ESC-CAS-2026-04512", datetime(2026, 10, 30)),
        ),
        created_at=datetime(2026, 11, 3, 14, 21),
        document_number=8951,
    ),
)


def _document_name(document_number: int, emitter_code: str, created_at: datetime, number: str) -> str:
    """The guide's file name: ``242#6110DOO116#20171101114900#INV00069321.pdf``."""
    c = created_at
    stamp = f"{c.year:04d}{c.month:02d}{c.day:02d}{c.hour:02d}{c.minute:02d}{c.second:02d}"
    return f"{document_number}#{emitter_code}#{stamp}#INV{number}.pdf"


def _ensure_guide_invoices(
    session: Session, emitters: dict[str, Emitter], companies: dict[str, Company], created: Counter[str]
) -> None:
    for spec in GUIDE_INVOICES:
        emitter = emitters[spec.emitter_code]
        company_id = companies[spec.customs_code].id
        assert emitter.id is not None and company_id is not None
        found = session.exec(
            select(Invoice.id).where(Invoice.emitter_id == emitter.id, Invoice.number == spec.number)
        ).first()
        if found is not None:
            continue
        invoice = Invoice(
            number=spec.number,
            type=InvoiceType.PRINCIPALE.value,
            emitter_id=emitter.id,
            company_id=company_id,
            invoice_date=spec.invoice_date,
            due_date=spec.due_date,
            amount_ht=spec.amount_ht,
            amount_tva=spec.amount_tva,
            amount_ttc=spec.amount_ht + spec.amount_tva,
            status=InvoiceStatus.UNPAID.value,
            payment_methods=spec.payment_methods,
            description=spec.description,
            created_at=spec.created_at,
            is_subscription=spec.is_subscription,
        )
        session.add(invoice)
        session.flush()
        assert invoice.id is not None
        for prestation, operation_type, reference, end_date in spec.lines:
            session.add(
                PrestationLine(
                    invoice_id=invoice.id,
                    prestation=prestation,
                    operation_type=operation_type,
                    reference=reference,
                    end_date=end_date,
                )
            )
        session.add(
            InvoiceMessage(
                invoice_id=invoice.id,
                seq=1,
                function=CREATION_MESSAGE["function"],
                name=CREATION_MESSAGE["name"],
                state=InvoiceStatus.UNPAID.value,
                created_at=spec.created_at,
                receiver=CREATION_MESSAGE["receiver"],
                observations=CREATION_MESSAGE["observations"],
                needs_reply=False,
            )
        )
        session.add(
            Document(
                invoice_id=invoice.id,
                kind="invoice",
                name=_document_name(spec.document_number, spec.emitter_code, spec.created_at, spec.number),
                description="Facture",
                content=None,
                created_at=spec.created_at,
            )
        )
        created["invoices"] += 1
        created["prestation_lines"] += len(spec.lines)
        created["invoice_messages"] += 1
        created["documents"] += 1
    session.flush()


# -- generated invoices -----------------------------------------------------------------------------

_INVOICE_COLUMNS = (
    "id",
    "number",
    "type",
    "principal_number",
    "emitter_id",
    "company_id",
    "invoice_date",
    "due_date",
    "amount_ht",
    "amount_tva",
    "amount_ttc",
    "currency",
    "status",
    "payment_methods",
    "description",
    "cancelled_at",
    "created_at",
    "is_subscription",
)
_LINE_COLUMNS = ("invoice_id", "prestation", "operation_type", "reference", "end_date")
_MESSAGE_COLUMNS = (
    "invoice_id",
    "seq",
    "function",
    "name",
    "state",
    "created_at",
    "receiver",
    "observations",
    "needs_reply",
)
_DOCUMENT_COLUMNS = ("invoice_id", "kind", "name", "description", "content_type", "created_at")


@dataclass(slots=True)
class _Draft:
    company_id: int
    profile: _Profile
    emitter_id: int
    invoice_date: datetime
    type: str
    lines: list[tuple[str, str, str, datetime]]
    amount_ht: Decimal
    vat_rate: Decimal
    status: str
    created_at: datetime
    description: str
    is_subscription: bool
    document_number: int


@dataclass
class _Batch:
    """Rows of one batch; child rows point at their invoice by position until ids are known."""

    invoices: list[list[Any]]
    lines: list[tuple[Any, ...]]
    messages: list[tuple[Any, ...]]
    documents: list[tuple[Any, ...]]


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        emitter_ids: dict[str, int],
        next_numbers: dict[str, int],
        start: date,
        end: date,
    ) -> None:
        self.rng = rng
        self.rand = rng.random
        self.emitter_ids = emitter_ids
        self.next_numbers = dict(next_numbers)
        self.start_ordinal = start.toordinal()
        self.span = end.toordinal() - self.start_ordinal + 1
        self.recent_cutoff = end.toordinal() - 365
        self.principals: dict[tuple[str, int], list[str]] = {}
        self.midnights: dict[int, datetime] = {}

    def _draft(self, company_id: int, profiles: Sequence[_Profile]) -> _Draft:
        rand = self.rand
        profile = profiles[int(rand() * len(profiles))]
        ordinal = self.start_ordinal + int(rand() * self.span)
        invoice_date = self.midnights.get(ordinal)
        if invoice_date is None:
            day = date.fromordinal(ordinal)
            invoice_date = self.midnights[ordinal] = datetime(day.year, day.month, day.day)
        year = invoice_date.year
        # Invoices reach PortNet the next working morning (the guide's 31/10 00:00 -> 01/11 11:49).
        created_at = invoice_date + timedelta(days=1, minutes=480 + int(rand() * 600))
        if profile.subscription is not None and rand() < 0.2:
            item = profile.subscription
            reference = item.reference(rand, year)
            lines = [(item.prestation, item.operation_types[0], reference, invoice_date - _ONE_DAY)]
            cents = item.min_cents
            vat_rate = _VAT_RATES[0]
            description = f"[REN]{reference}"
            is_subscription = True
            kind = _PRINCIPALE
        else:
            lines = []
            cents = 0
            items = profile.items
            for _ in range(1 + (rand() < 0.35) + (rand() < 0.15)):
                item = items[int(rand() * len(items))]
                operations = item.operation_types
                operation = operations[int(rand() * len(operations))]
                end_date = invoice_date - _DAYS[int(rand() * 15)]
                lines.append((item.prestation, operation, item.reference(rand, year), end_date))
                cents += item.min_cents + int(rand() * (item.max_cents - item.min_cents + 1))
            vat_rate = _VAT_TABLE[int(rand() * 100)]
            first = lines[0]
            description = f"{first[0]} {first[1]} {first[2]}"
            is_subscription = False
            roll = rand()
            kind = _AVOIR if roll < 0.06 else _COMPLEMENTAIRE if roll < 0.14 else _PRINCIPALE
        table = _OLD_STATUS_TABLE if ordinal < self.recent_cutoff else _RECENT_STATUS_TABLE
        status = table[int(rand() * 100)]
        if status == _AWAITING_PARTNER and profile.settles_directly:
            # PORTNET settles directly: its invoices never wait for a partner's acknowledgement.
            status = _PAID
        return _Draft(
            company_id=company_id,
            profile=profile,
            emitter_id=self.emitter_ids[profile.code],
            invoice_date=invoice_date,
            type=kind,
            lines=lines,
            amount_ht=Decimal(cents).scaleb(-2),
            vat_rate=vat_rate,
            status=status,
            created_at=created_at,
            description=description,
            is_subscription=is_subscription,
            document_number=100 + int(rand() * 999_900),
        )

    def batch(
        self,
        plan: Sequence[tuple[int, Sequence[_Profile]]],
        *,
        with_lines: bool = True,
        with_messages: bool = True,
        with_documents: bool = True,
    ) -> _Batch:
        """One batch of invoices, numbered per emitter in date order."""
        drafts = [self._draft(*entry) for entry in plan]
        drafts.sort(key=lambda d: d.invoice_date)
        rand = self.rand
        batch = _Batch([], [], [], [])
        for position, draft in enumerate(drafts):
            code = draft.profile.code
            number_value = self.next_numbers[code]
            if number_value > MAX_NUMBER:
                raise ValueError(f"emitter {code} has run out of 8-digit invoice numbers")
            self.next_numbers[code] = number_value + 1
            number = f"{number_value:08d}"
            principal_number = None
            key = (code, draft.company_id)
            earlier = self.principals.setdefault(key, [])
            kind = draft.type
            description = draft.description
            if kind != _PRINCIPALE:
                if earlier:
                    principal_number = earlier[int(rand() * len(earlier))]
                    prefix = "Avoir sur facture" if kind == _AVOIR else "Complément facture"
                    description = f"{prefix} {principal_number} - {description}"
                else:
                    kind = _PRINCIPALE
            if kind == _PRINCIPALE:
                earlier.append(number)
                if len(earlier) > 20:
                    del earlier[0]
            amount_tva = (draft.amount_ht * draft.vat_rate).quantize(CENT, rounding=ROUND_HALF_UP)
            cancelled_at = None
            if draft.status == _CANCELLED:
                delay = timedelta(days=1 + int(rand() * 45), minutes=int(rand() * 600))
                cancelled_at = draft.created_at + delay
            batch.invoices.append(
                [
                    None,
                    number,
                    kind,
                    principal_number,
                    draft.emitter_id,
                    draft.company_id,
                    draft.invoice_date,
                    draft.invoice_date + timedelta(days=draft.profile.due_days),
                    draft.amount_ht,
                    amount_tva,
                    draft.amount_ht + amount_tva,
                    "MAD",
                    draft.status,
                    draft.profile.payment_methods,
                    description,
                    cancelled_at,
                    draft.created_at,
                    draft.is_subscription,
                ]
            )
            if with_lines:
                batch.lines.extend((position, *line) for line in draft.lines)
            if with_messages:
                batch.messages.append(
                    (
                        position,
                        1,
                        CREATION_MESSAGE["function"],
                        CREATION_MESSAGE["name"],
                        InvoiceStatus.UNPAID.value,
                        draft.created_at,
                        CREATION_MESSAGE["receiver"],
                        CREATION_MESSAGE["observations"],
                        False,
                    )
                )
            if with_documents:
                batch.documents.append(
                    (
                        position,
                        "invoice",
                        _document_name(draft.document_number, code, draft.created_at, number),
                        "Facture",
                        "application/pdf",
                        draft.created_at,
                    )
                )
        return batch


def _table(model: type[SQLModel]) -> sa.Table:
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


def _centimes_of_quantized(value: Decimal) -> int:
    scaled = value.scaleb(2)
    centimes = int(scaled)
    if centimes != scaled:
        raise ValueError(f"bulk amounts must be quantized to the centime: {value!r}")
    return centimes


def _sqlite_datetime_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ", "microseconds")


class _BulkWriter:
    """Inserts plain rows fast on the session's own connection and transaction."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect

    def reserve_invoice_ids(self, count: int) -> list[int]:
        """Ids taken up front so that lines, messages and documents can point at their invoice."""
        if count == 0:
            return []
        if self.dialect.name == "postgresql":
            # From the column's own sequence: later ORM inserts carry on after these ids.
            rows = self.connection.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('invoice', 'id')) FROM generate_series(1, :n)"
                ),
                {"n": count},
            ).all()
            return sorted(row[0] for row in rows)
        highest = self.connection.execute(sa.select(sa.func.max(col(Invoice.id)))).scalar() or 0
        return list(range(highest + 1, highest + 1 + count))

    def _processor(self, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
        if isinstance(column.type, MoneyType):
            # The generator hands over Decimals already quantized to the centime, which MoneyType's
            # own to_money() would re-establish at several times the cost.
            return _centimes_of_quantized
        if isinstance(column.type, sa.Boolean):
            return None  # both drivers take Python bools as they are
        processor = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        if processor is not None and isinstance(column.type, sa.DateTime):
            # SQLite stores datetimes as text; isoformat() writes the very same text in C, ten times
            # faster. Checked rather than assumed, in case SQLAlchemy ever changes its format.
            sample = datetime(2017, 11, 1, 11, 49, 0, 1234)
            if processor(sample) == sample.isoformat(" ", "microseconds"):
                return _sqlite_datetime_text
        return processor

    def insert(self, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect.name not in ("postgresql", "sqlite"):
            self.connection.execute(sa.insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
            return
        processors = [
            (index, processor)
            for index, name in enumerate(columns)
            if (processor := self._processor(table.c[name])) is not None
        ]
        if processors:
            processed: list[Sequence[Any]] = []
            for row in rows:
                values = list(row)
                for index, processor in processors:
                    values[index] = processor(values[index])
                processed.append(values)
            rows = processed
        column_list = ", ".join(self.dialect.identifier_preparer.quote(name) for name in columns)
        table_name = self.dialect.identifier_preparer.format_table(table)
        if self.dialect.name == "postgresql":
            raw = self.connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join("?" for _ in columns)
            self.connection.exec_driver_sql(
                f"INSERT INTO {table_name} ({column_list}) VALUES ({placeholders})",  # noqa: S608
                [tuple(row) for row in rows],
            )

    def write(self, batch: _Batch) -> Counter[str]:
        ids = self.reserve_invoice_ids(len(batch.invoices))
        for invoice_id, row in zip(ids, batch.invoices, strict=True):
            row[0] = invoice_id
        self.insert(_table(Invoice), _INVOICE_COLUMNS, batch.invoices)
        children: list[tuple[sa.Table, tuple[str, ...], list[tuple[Any, ...]], str]] = [
            (_table(PrestationLine), _LINE_COLUMNS, batch.lines, "prestation_lines"),
            (_table(InvoiceMessage), _MESSAGE_COLUMNS, batch.messages, "invoice_messages"),
            (_table(Document), _DOCUMENT_COLUMNS, batch.documents, "documents"),
        ]
        counts: Counter[str] = Counter(invoices=len(batch.invoices))
        for table, columns, rows, label in children:
            self.insert(table, columns, [(ids[row[0]], *row[1:]) for row in rows])
            counts[label] += len(rows)
        return counts


def _weighted(profiles: Iterable[_Profile]) -> tuple[_Profile, ...]:
    """Each profile repeated ``weight`` times, so that a uniform draw follows the weights."""
    return tuple(profile for profile in profiles for _ in range(profile.weight))


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
    generator = _Generator(
        rng,
        {code: e.id for code, e in emitters.items() if e.id is not None},
        _next_free_numbers(session, emitters),
        start,
        end,
    )
    weighted = _weighted(PROFILES)
    ids = list(company_ids)
    rand = rng.random
    totals: Counter[str] = Counter()
    for done in range(0, count, batch_size):
        entries = [(ids[int(rand() * len(ids))], weighted) for _ in range(min(batch_size, count - done))]
        batch = generator.batch(
            entries, with_lines=with_lines, with_messages=with_messages, with_documents=with_documents
        )
        totals.update(_BulkWriter(session.connection()).write(batch))
        session.commit()
    return {key: totals[key] for key in ("invoices", "prestation_lines", "invoice_messages", "documents")}


# -- the demo ----------------------------------------------------------------------------------------

DEMO_INVOICES_PER_COMPANY = 400


def _seed_generated(
    session: Session, emitters: dict[str, Emitter], companies: dict[str, Company], created: Counter[str]
) -> None:
    """~400 invoices per demo company, drawn the same way on every run; only missing ones are written."""
    rng = random.Random(DEMO_SEED)
    generator = _Generator(
        rng,
        {code: e.id for code, e in emitters.items() if e.id is not None},
        {profile.code: profile.number_base for profile in PROFILES},
        GENERATION_START,
        GENERATION_END,
    )
    entries: list[tuple[int, Sequence[_Profile]]] = []
    for spec in COMPANIES:
        company_id = companies[spec.customs_code].id
        assert company_id is not None
        profiles = PROFILES
        if spec.customs_code == "1247":
            # TMTA's MARSAMAROC CASA invoices are fetched by the invoice-request feature.
            profiles = tuple(p for p in PROFILES if p.code != MARSAMAROC_CASA)
        weighted = _weighted(profiles)
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
        batch = _Batch(
            [batch.invoices[i] for i in keep],
            [(position[r[0]], *r[1:]) for r in batch.lines if r[0] in position],
            [(position[r[0]], *r[1:]) for r in batch.messages if r[0] in position],
            [(position[r[0]], *r[1:]) for r in batch.documents if r[0] in position],
        )
    created.update(_BulkWriter(session.connection()).write(batch))


def seed_demo(session: Session) -> dict[str, int]:
    """Writes whatever part of the demo is missing, then commits; returns rows created per table.

    A second run returns all zeros and changes nothing.
    """
    created: Counter[str] = Counter()
    emitters = ensure_emitters(session, created)
    companies = _ensure_companies(session, created)
    _ensure_users(session, companies, created)
    _ensure_guide_invoices(session, emitters, companies, created)
    _seed_generated(session, emitters, companies, created)
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
