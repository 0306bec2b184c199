"""Demo data: the guide's records exactly, realistic generated invoices, and idempotence."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from stdnum.ma import ice

from portnet import migrate
from portnet.db import make_engine
from portnet.models import (
    Company,
    Document,
    Emitter,
    Invoice,
    InvoiceMessage,
    Payment,
    PaymentInvoice,
    PrestationLine,
    User,
)
from portnet.security import verify_password
from portnet.seed import (
    ANP,
    DEMO_PASSWORD,
    MARSAMAROC_CASA,
    PORTNET,
    demo_counts,
    generate_invoices,
    ice_check_digits,
    seed_demo,
)
from portnet.seed.history import paid_without_payment
from portnet.statuses import InvoiceStatus, InvoiceType
from tests.support.databases import fresh_database_url

RATES = (Decimal("0.20"), Decimal("0.14"), Decimal("0.10"), Decimal("0.07"))
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One seeded database for the read-only tests of this module."""
    with fresh_database_url() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            seed_demo(session)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def fresh_engine() -> Iterator[Engine]:
    """A migrated database of its own, for tests that write."""
    with fresh_database_url() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _invoice(session: Session, emitter_code: str, number: str) -> Invoice:
    invoice = session.exec(
        select(Invoice).join(Emitter).where(Emitter.code == emitter_code, Invoice.number == number)
    ).one()
    return invoice


# -- idempotence ------------------------------------------------------------------------------------


def test_seed_twice_changes_nothing(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session:
        first = seed_demo(session)
        counts = demo_counts(session)
        snapshot = sorted(
            (i.emitter_id, i.number, i.amount_ttc, i.status, i.invoice_date)
            for i in session.exec(select(Invoice))
        )
    with Session(fresh_engine) as session:
        second = seed_demo(session)
        assert demo_counts(session) == counts
        again = sorted(
            (i.emitter_id, i.number, i.amount_ttc, i.status, i.invoice_date)
            for i in session.exec(select(Invoice))
        )
    assert first == counts
    assert set(second.values()) == {0}
    assert again == snapshot


def test_seed_fills_in_what_is_missing_and_keeps_changes(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session:
        seed_demo(session)
        counts = demo_counts(session)
        sataa = session.exec(select(User).where(User.username == "sataa")).one()
        sataa.password_hash = "changed-by-the-user"
        session.add(sataa)
        finance = session.exec(select(User).where(User.username == "finance")).one()
        session.delete(finance)
        session.commit()
    with Session(fresh_engine) as session:
        created = seed_demo(session)
        assert created["users"] == 1
        assert demo_counts(session) == counts
        sataa = session.exec(select(User).where(User.username == "sataa")).one()
        assert sataa.password_hash == "changed-by-the-user"


def test_seed_counts(session: Session) -> None:
    counts = demo_counts(session)
    assert counts["emitters"] == 6 + 9  # the guide's, and one per other MARSA MAROC terminal
    assert counts["companies"] == 3
    assert counts["users"] == 6
    assert counts["invoices"] >= 3 * 400
    paid = session.exec(select(sa.func.count()).select_from(Invoice).where(Invoice.status == "paid")).one()
    # Creation for each; request, confirmation and paid for each paid one; 00069321's three attempts.
    assert counts["invoice_messages"] == counts["invoices"] + 3 * paid + 3
    assert counts["documents"] == counts["invoices"]
    assert counts["prestation_lines"] > counts["invoices"]


# -- the guide's records ----------------------------------------------------------------------------


def test_guide_invoice_of_sataa(session: Session) -> None:
    invoice = _invoice(session, PORTNET, "00069321")
    company = session.get(Company, invoice.company_id)
    assert company is not None
    assert company.name == "SATAA IMPORT EXPORT SARL AU"
    assert company.customs_code == "290240"
    assert invoice.type == InvoiceType.PRINCIPALE
    assert invoice.amount_ht == Decimal("3000.00")
    assert invoice.amount_tva == Decimal("600.00")
    assert invoice.amount_ttc == Decimal("3600.00")
    assert str(invoice.amount_ttc) == "3600.00"
    assert invoice.invoice_date == datetime(2017, 10, 31)
    assert invoice.due_date == datetime(2017, 12, 30)
    assert invoice.description == "[REN]Abonnement annuel IMP"
    assert invoice.methods == ["amanpay", "cheque", "virement"]
    assert invoice.status == InvoiceStatus.UNPAID
    assert invoice.is_subscription is True
    assert invoice.currency == "MAD"
    assert invoice.principal_number is None
    assert invoice.cancelled_at is None

    lines = session.exec(select(PrestationLine).where(PrestationLine.invoice_id == invoice.id)).all()
    assert [(p.prestation, p.operation_type, p.reference, p.end_date) for p in lines] == [
        ("Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel IMP", datetime(2017, 10, 30))
    ]
    message = session.exec(
        select(InvoiceMessage).where(InvoiceMessage.invoice_id == invoice.id, InvoiceMessage.seq == 1)
    ).one()
    assert (message.seq, message.function, message.name, message.state) == (1, "INV", "INV_115", "unpaid")
    assert (message.receiver, message.observations, message.needs_reply) == (
        "PortNet",
        "Création de la Facture",
        False,
    )
    assert message.created_at == datetime(2017, 11, 1, 11, 49)
    (document,) = session.exec(select(Document).where(Document.invoice_id == invoice.id)).all()
    assert document.kind == "invoice"
    assert document.name == "242#6110DOO116#20171101114900#INV00069321.pdf"
    assert document.description == "Facture"
    assert document.content is None
    assert document.created_at == datetime(2017, 11, 1, 11, 49)


def test_guide_invoice_of_aska(session: Session) -> None:
    invoice = _invoice(session, PORTNET, "00028653")
    company = session.get(Company, invoice.company_id)
    assert company is not None
    assert (company.name, company.customs_code) == ("ASKA IMPRT EXPORT", "93583")
    assert invoice.invoice_date == datetime(2016, 3, 26)
    assert invoice.due_date == datetime(2016, 5, 25)
    assert (invoice.amount_ht, invoice.amount_tva, invoice.amount_ttc) == (
        Decimal("3000.00"),
        Decimal("600.00"),
        Decimal("3600.00"),
    )
    assert invoice.status == InvoiceStatus.UNPAID
    assert invoice.methods == ["cmi", "amanpay", "cheque"]


def test_tmta_has_portnet_and_anp_invoices_but_no_marsamaroc(session: Session) -> None:
    tmta = session.exec(select(Company).where(Company.customs_code == "1247")).one()
    codes = Counter(
        session.exec(select(Emitter.code).join(Invoice).where(Invoice.company_id == tmta.id)).all()
    )
    assert codes[PORTNET] > 0 and codes[ANP] > 0
    assert codes[MARSAMAROC_CASA] == 0
    for number in ("02296945", "02296947", "02329290"):  # fetched from MARSA MAROC later on
        assert session.exec(select(Invoice).where(Invoice.number == number)).first() is None


def test_emitters_of_the_guide(session: Session) -> None:
    emitters = {e.code: e for e in session.exec(select(Emitter)).all()}
    portnet = emitters["6110DOO116"]
    assert (portnet.name, portnet.cin, portnet.rc_centre, portnet.rc_number, portnet.ifu) == (
        "PORTNET",
        "1123131",
        "122",
        "123",
        "123",
    )
    anp = emitters["611AGEN001"]
    assert (anp.name, anp.cin, anp.rc_number, anp.ifu) == ("ANP", "B123131231", "R23242342", "1232424244")
    assert anp.address and "Test" not in anp.address
    names = {e.name for e in emitters.values()}
    assert {"MARSAMAROC CASA", "Bureau Veritas", "TUV Rheinland"} <= names
    assert [e.code for e in emitters.values() if e.settles_directly] == [PORTNET]
    assert len([e for e in emitters.values() if not e.active]) == 1


def test_companies_have_valid_ice_and_contact(session: Session) -> None:
    companies = {c.customs_code: c for c in session.exec(select(Company)).all()}
    assert {companies[c].name for c in ("290240", "93583", "1247")} == {
        "SATAA IMPORT EXPORT SARL AU",
        "ASKA IMPRT EXPORT",
        "TMTA",
    }
    for company in companies.values():
        assert company.ice is not None and len(company.ice) == 15
        assert ice.is_valid(company.ice), company.ice
        assert company.email and "@" in company.email
        assert company.address
        assert company.subscription_end is not None


def test_ice_check_digits() -> None:
    assert ice_check_digits("0015611910000") == "66"  # python-stdnum's documented example
    with pytest.raises(ValueError):
        ice_check_digits("123")


def test_demo_users(session: Session) -> None:
    users = {u.username: u for u in session.exec(select(User)).all()}
    assert set(users) == {"sataa", "yary", "aska", "tmta", "finance", "admin"}
    companies = {c.id: c.customs_code for c in session.exec(select(Company)).all()}
    assert companies[users["sataa"].company_id] == "290240"
    assert companies[users["aska"].company_id] == "93583"
    assert companies[users["tmta"].company_id] == "1247"
    assert (users["finance"].role, users["finance"].company_id) == ("finance", None)
    assert (users["admin"].role, users["admin"].company_id) == ("admin", None)
    assert {users[n].role for n in ("sataa", "aska", "tmta")} == {"client"}
    assert users["sataa"].email == "sataa@demo.portnet.ma"
    for user in users.values():
        assert user.must_change_password is False
        assert user.is_active is True
        assert user.password_hash.startswith("$argon2id$")
    assert verify_password(DEMO_PASSWORD, users["sataa"].password_hash)
    assert not verify_password("wrong", users["sataa"].password_hash)


# -- generated invoices -----------------------------------------------------------------------------


def _check_amounts(invoices: list[Invoice]) -> None:
    for invoice in invoices:
        assert invoice.amount_ttc == invoice.amount_ht + invoice.amount_tva, invoice.number
        assert invoice.amount_ht > 0
        possible = {(invoice.amount_ht * rate).quantize(CENT, rounding=ROUND_HALF_UP) for rate in RATES}
        assert invoice.amount_tva in possible, invoice.number
        for amount in (invoice.amount_ht, invoice.amount_tva, invoice.amount_ttc):
            assert amount == amount.quantize(CENT)


def test_every_invoice_adds_up(session: Session) -> None:
    invoices = list(session.exec(select(Invoice)).all())
    _check_amounts(invoices)


def test_generated_invoices_look_real(session: Session) -> None:
    invoices = list(session.exec(select(Invoice)).all())
    emitters = {e.id: e for e in session.exec(select(Emitter)).all()}
    per_company = Counter(i.company_id for i in invoices)
    assert all(count >= 400 for count in per_company.values())
    assert {emitters[i.emitter_id].name for i in invoices} == {
        "PORTNET",
        "ANP",
        "MARSAMAROC CASA",
        "Bureau Veritas",
        "TUV Rheinland",
    }
    statuses = Counter(i.status for i in invoices)
    assert statuses.most_common(1)[0][0] == InvoiceStatus.UNPAID
    for status in ("paid", "payment_confirmed", "awaiting_partner", "blocked", "cancelled"):
        assert statuses[status] > 0, status
    types = Counter(i.type for i in invoices)
    assert types["principale"] > types["avoir"] > 0 and types["complementaire"] > 0
    assert {i.invoice_date.year for i in invoices} >= set(range(2016, 2027))
    by_key: dict[tuple[int, int, str | None], Invoice] = {
        (i.emitter_id, i.company_id, i.number): i for i in invoices
    }
    for invoice in invoices:
        assert len(invoice.number) == 8 and invoice.number.isdigit()
        assert (invoice.cancelled_at is not None) == (invoice.status == InvoiceStatus.CANCELLED)
        assert invoice.due_date is not None and invoice.due_date > invoice.invoice_date
        assert invoice.methods and set(invoice.methods) <= {"cmi", "amanpay", "cheque", "virement"}
        if emitters[invoice.emitter_id].code == MARSAMAROC_CASA:
            assert invoice.payment_methods == "cmi"
        if emitters[invoice.emitter_id].settles_directly:
            assert invoice.status != InvoiceStatus.AWAITING_PARTNER
        if invoice.type == InvoiceType.PRINCIPALE:
            assert invoice.principal_number is None
        else:
            principal = by_key[(invoice.emitter_id, invoice.company_id, invoice.principal_number)]
            assert principal.type == InvoiceType.PRINCIPALE
            assert principal.invoice_date <= invoice.invoice_date


def test_every_invoice_has_lines_a_creation_message_and_a_document(session: Session) -> None:
    lines = Counter(session.exec(select(PrestationLine.invoice_id)).all())
    messages = session.exec(select(InvoiceMessage)).all()
    documents = session.exec(select(Document)).all()
    ids = set(session.exec(select(Invoice.id)).all())
    assert set(lines) == ids and max(lines.values()) <= 3
    assert {m.invoice_id for m in messages} == ids
    firsts = [m for m in messages if m.seq == 1]
    assert len(firsts) == len(ids)
    assert all((m.function, m.name, m.state) == ("INV", "INV_115", "unpaid") for m in firsts)
    assert {d.invoice_id for d in documents} == ids
    assert all(d.name.endswith(".pdf") and "#INV" in d.name for d in documents)
    prestations = set(session.exec(select(PrestationLine.prestation)).all())
    assert {
        "Redevance marchandises",
        "Droits de port",
        "Manutention conteneur",
        "Contrôle technique",
    } <= prestations
    assert {"Certificat de conformité", "Abonnement Portnet"} <= prestations


def test_bulk_rows_read_back_like_orm_rows(session: Session) -> None:
    """Bulk-written datetimes compare equal in SQL, so date filters find generated invoices."""
    generated = session.exec(select(Invoice).where(col(Invoice.number) >= "10000000").limit(5)).all()
    assert generated
    for invoice in generated:
        found = session.exec(
            select(Invoice.id).where(
                Invoice.invoice_date == invoice.invoice_date,
                Invoice.emitter_id == invoice.emitter_id,
                Invoice.number == invoice.number,
            )
        ).one()
        assert found == invoice.id
        between = session.exec(
            select(sa.func.count())
            .select_from(Invoice)
            .where(col(Invoice.invoice_date) >= invoice.invoice_date, Invoice.id == invoice.id)
        ).one()
        assert between == 1


def test_generate_invoices_on_top_of_the_demo(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session:
        seed_demo(session)
        before = demo_counts(session)
        company_ids = [i for i in session.exec(select(Company.id)).all() if i is not None]
        first = generate_invoices(session, company_ids, 2500, random.Random(7), batch_size=1000)
        second = generate_invoices(session, company_ids, 700, random.Random(7), batch_size=1000)
        after = demo_counts(session)
        assert first["invoices"] == 2500 and second["invoices"] == 700
        assert after["invoices"] == before["invoices"] + 3200
        added = after["invoice_messages"] - before["invoice_messages"]
        assert added == after["invoices"] - before["invoices"]  # bulk invoices: their creation line only
        assert after["documents"] == after["invoices"]
        assert after["prestation_lines"] - before["prestation_lines"] == (
            first["prestation_lines"] + second["prestation_lines"]
        )
        _check_amounts(list(session.exec(select(Invoice)).all()))
        # The id sequence follows the bulk ids: the application can still insert invoices.
        emitter = session.exec(select(Emitter).where(Emitter.code == ANP)).one()
        assert emitter.id is not None
        highest = max(session.exec(select(Invoice.id)).all(), key=lambda i: i or 0)
        assert highest is not None
        invoice = Invoice(
            number="99999999",
            emitter_id=emitter.id,
            company_id=company_ids[0],
            invoice_date=datetime(2026, 11, 1),
            amount_ht=Decimal("10.00"),
            amount_tva=Decimal("2.00"),
            amount_ttc=Decimal("12.00"),
        )
        session.add(invoice)
        session.commit()
        assert invoice.id is not None and invoice.id > highest
        # seed_demo still recognises its own rows among the bulk ones.
        assert set(seed_demo(session).values()) == {0}


def test_generate_invoices_is_deterministic(fresh_engine: Engine) -> None:
    def rows(engine: Engine) -> list[tuple[object, ...]]:
        with Session(engine) as session:
            return [
                (i.number, i.type, i.principal_number, i.invoice_date, i.amount_ttc, i.status, i.description)
                for i in session.exec(select(Invoice).order_by(col(Invoice.emitter_id), col(Invoice.number)))
            ]

    with fresh_database_url() as other_url:
        migrate.upgrade(other_url)
        other = make_engine(other_url)
        try:
            for engine in (fresh_engine, other):
                with Session(engine) as session:
                    company = Company(name="BENCH SARL", customs_code="555555")
                    session.add(company)
                    session.commit()
                    assert company.id is not None
                    generate_invoices(session, [company.id], 600, random.Random(42), batch_size=250)
            assert rows(fresh_engine) == rows(other)
        finally:
            other.dispose()


def test_generate_invoices_can_skip_child_rows(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session:
        company = Company(name="BENCH SARL", customs_code="555555")
        session.add(company)
        session.commit()
        assert company.id is not None
        counts = generate_invoices(
            session,
            [company.id],
            300,
            random.Random(1),
            with_lines=False,
            with_messages=False,
            with_documents=False,
        )
        assert counts == {"invoices": 300, "prestation_lines": 0, "invoice_messages": 0, "documents": 0}
        assert demo_counts(session)["prestation_lines"] == 0


def test_generate_invoices_needs_companies(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session, pytest.raises(ValueError):
        generate_invoices(session, [], 10, random.Random(1))


def test_paid_invoices_have_their_payment_and_00069321_its_history(session: Session) -> None:
    assert paid_without_payment(session) == 0
    paid = session.exec(select(Invoice).where(Invoice.status == "paid").order_by(col(Invoice.id))).first()
    assert paid is not None
    links = session.exec(select(PaymentInvoice).where(PaymentInvoice.invoice_id == paid.id)).all()
    assert [link.in_force for link in links] == [True]
    payment = session.get(Payment, links[0].payment_id)
    assert payment is not None and payment.status == "succeeded" and payment.amount == paid.amount_ttc
    names = [
        m.name
        for m in session.exec(
            select(InvoiceMessage)
            .where(InvoiceMessage.invoice_id == paid.id)
            .order_by(col(InvoiceMessage.seq))
        )
    ]
    assert names[0] == "INV_115" and names[-1] == "INV_PAID"

    guide = session.exec(select(Invoice).where(Invoice.number == "00069321")).one()
    lines = session.exec(
        select(InvoiceMessage).where(InvoiceMessage.invoice_id == guide.id).order_by(col(InvoiceMessage.seq))
    ).all()
    attempts = [
        (m.seq, m.function, m.name, m.state, m.user_name, m.receiver, m.observations) for m in lines[1:4]
    ]
    assert attempts == [
        (n, "AMA", None, "unpaid", "yary", "Amanpay", "Reglement des factures: 00069321") for n in (2, 3, 4)
    ]
    assert [m.created_at.strftime("%d/%m/%Y %H:%M") for m in lines[1:4]] == [
        "22/12/2017 10:00",
        "22/12/2017 10:04",
        "22/12/2017 11:53",
    ]
    assert session.exec(select(User).where(User.username == "yary")).one().role == "client"
