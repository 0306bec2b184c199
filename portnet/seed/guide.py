"""The user guide's records, reproduced exactly: emitters, companies and their invoices.

Names, codes and amounts of the guide ("Guide utilisateur - paiement des factures") are written as
the guide shows them: SATAA's 00069321 and ASKA's 00028653 from PORTNET, the emitter look-up of
PORTNET and ANP. TMTA's MARSAMAROC CASA invoices are *not* here: they arrive through the
invoice-request feature. Every row is written only where its natural key (emitter code, customs code,
emitter + invoice number) is missing, so a database people have played with keeps their changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import Session, select

from portnet.models import Company, Document, Emitter, Invoice, InvoiceMessage, PrestationLine
from portnet.statuses import InvoiceStatus, InvoiceType, MessageFunction

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


def ice_check_digits(base13: str) -> str:
    """The two ICE control digits: the 15-digit number must be divisible by 97 (``stdnum.ma.ice``)."""
    if len(base13) != 13 or not base13.isdigit():
        raise ValueError(f"an ICE base is 13 digits: {base13!r}")
    return f"{(-int(base13) * 100) % 97:02d}"


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


def ensure_companies(session: Session, created: Counter[str]) -> dict[str, Company]:
    """The demo companies, by customs code; existing rows are returned untouched."""
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


# -- the guide's invoices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GuideInvoice:
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


GUIDE_INVOICES: tuple[GuideInvoice, ...] = (
    GuideInvoice(
        "290240",
        PORTNET,
        "00069321",
        datetime(2017, 10, 31),
        datetime(2017, 12, 30),
        Decimal("3000.00"),
        Decimal("600.00"),
        # The guide's search and confirmation screens list Amanpay, Chèque, Virement [133, 277]: no CMI.
        "amanpay,cheque,virement",
        "[REN]Abonnement annuel IMP",
        (("Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel IMP", datetime(2017, 10, 30)),),
        created_at=datetime(2017, 11, 1, 11, 49),
        document_number=242,
        is_subscription=True,
    ),
    GuideInvoice(
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
    GuideInvoice(
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
    GuideInvoice(
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
    GuideInvoice(
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


def document_name(document_number: int, emitter_code: str, created_at: datetime, number: str) -> str:
    """The guide's file name: ``242#6110DOO116#20171101114900#INV00069321.pdf``."""
    c = created_at
    stamp = f"{c.year:04d}{c.month:02d}{c.day:02d}{c.hour:02d}{c.minute:02d}{c.second:02d}"
    return f"{document_number}#{emitter_code}#{stamp}#INV{number}.pdf"


def ensure_guide_invoices(
    session: Session, emitters: dict[str, Emitter], companies: dict[str, Company], created: Counter[str]
) -> None:
    """The guide's invoices with their line, creation message and document, where not stored yet."""
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
                name=document_name(spec.document_number, spec.emitter_code, spec.created_at, spec.number),
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
