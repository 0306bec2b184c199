"""Read side of the ledger: the multi-criteria invoice search and the invoice detail.

The search is one SELECT with the company filter always first (a user only sees their own company's
invoices), and a COUNT over the same filters for "Résultats (N)". Prestation criteria use EXISTS so
an invoice with two matching lines is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from portnet.models import (
    Company,
    Document,
    Emitter,
    Invoice,
    InvoiceMessage,
    Payment,
    PaymentInvoice,
    PrestationLine,
)

MAX_PAGE_SIZE = 100
# A search counts its results up to this many (and at least to the end of the page asked for): an
# exact count of a large client's hundreds of thousands of invoices costs tens of milliseconds on
# every search, and "more than 10 000" tells the user as much.
COUNT_CAP = 10_000


@dataclass
class InvoiceSearch:
    number: str | None = None
    type: str | None = None
    status: str | None = None
    emitter: str | None = None  # emitter code or name
    date_from: date | None = None
    date_to: date | None = None
    prestation: str | None = None
    operation_type: str | None = None
    reference: str | None = None
    page: int = 1
    page_size: int = 20


@dataclass
class InvoiceRow:
    id: int
    number: str
    type: str
    emitter_code: str
    emitter_name: str
    client_name: str
    client_code: str
    invoice_date: datetime
    due_date: datetime | None
    amount_ht: Decimal
    amount_tva: Decimal
    amount_ttc: Decimal
    currency: str
    status: str
    payment_methods: list[str]


def _filters(criteria: InvoiceSearch, company_id: int | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if company_id is not None:
        where.append(col(Invoice.company_id) == company_id)
    if criteria.number:
        where.append(col(Invoice.number) == criteria.number.strip())
    if criteria.type:
        where.append(col(Invoice.type) == criteria.type)
    if criteria.status:
        where.append(col(Invoice.status) == criteria.status)
    if criteria.emitter:
        term = criteria.emitter.strip()
        where.append(
            col(Invoice.emitter_id).in_(
                select(Emitter.id).where(
                    sa.or_(col(Emitter.code) == term, sa.func.lower(Emitter.name) == term.lower())
                )
            )
        )
    if criteria.date_from:
        where.append(col(Invoice.invoice_date) >= datetime.combine(criteria.date_from, time.min))
    if criteria.date_to:
        where.append(
            col(Invoice.invoice_date) < datetime.combine(criteria.date_to + timedelta(days=1), time.min)
        )
    line_filters = []
    if criteria.prestation:
        line_filters.append(col(PrestationLine.prestation) == criteria.prestation)
    if criteria.operation_type:
        line_filters.append(col(PrestationLine.operation_type) == criteria.operation_type)
    if criteria.reference:
        line_filters.append(col(PrestationLine.reference) == criteria.reference.strip())
    if line_filters:
        where.append(sa.exists().where(col(PrestationLine.invoice_id) == Invoice.id, *line_filters))
    return where


def count_limit(page: int, page_size: int) -> int:
    """How far a search counts: ``COUNT_CAP``, or further to count the page asked for."""
    return max(COUNT_CAP, max(1, page) * page_size)


def count_is_exact(count: int, page: int, page_size: int) -> bool:
    """Whether ``search_invoices``' count is the number of results (else: more than ``count``)."""
    return count <= count_limit(page, page_size)


def search_invoices(
    session: Session, criteria: InvoiceSearch, company_id: int | None
) -> tuple[list[InvoiceRow], int]:
    """``company_id`` None means every company (finance staff).

    The count is exact up to ``count_limit``; past it, it is that limit + 1 (``count_is_exact``).
    """
    where = _filters(criteria, company_id)
    page_size = max(1, min(criteria.page_size, MAX_PAGE_SIZE))
    page = max(1, criteria.page)
    counted = select(Invoice.id).where(*where).limit(count_limit(page, page_size) + 1).subquery()
    count = session.exec(select(sa.func.count()).select_from(counted)).one()
    rows = session.exec(
        select(Invoice, Emitter, Company)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .join(Company, col(Company.id) == Invoice.company_id)
        .where(*where)
        .order_by(col(Invoice.invoice_date).desc(), col(Invoice.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [row_of(inv, em, co) for inv, em, co in rows], int(count)


def row_of(inv: Invoice, em: Emitter, co: Company) -> InvoiceRow:
    assert inv.id is not None
    return InvoiceRow(
        id=inv.id,
        number=inv.number,
        type=inv.type,
        emitter_code=em.code,
        emitter_name=em.name,
        client_name=co.name,
        client_code=co.customs_code,
        invoice_date=inv.invoice_date,
        due_date=inv.due_date,
        amount_ht=inv.amount_ht,
        amount_tva=inv.amount_tva,
        amount_ttc=inv.amount_ttc,
        currency=inv.currency,
        status=inv.status,
        payment_methods=inv.methods,
    )


def invoices_for_user(
    session: Session, ids: list[int], company_id: int | None
) -> list[tuple[Invoice, Emitter, Company]]:
    query = (
        select(Invoice, Emitter, Company)
        .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
        .join(Company, col(Company.id) == Invoice.company_id)
        .where(col(Invoice.id).in_(ids))
    )
    if company_id is not None:
        query = query.where(col(Invoice.company_id) == company_id)
    return list(session.exec(query.order_by(col(Invoice.number))).all())


@dataclass
class InvoiceDetail:
    invoice: Invoice
    emitter: Emitter
    company: Company
    prestations: list[PrestationLine]
    payments: list[tuple[Payment, PaymentInvoice]]
    documents: list[Document]
    messages: list[InvoiceMessage]


def invoice_detail(session: Session, invoice_id: int, company_id: int | None) -> InvoiceDetail | None:
    found = invoices_for_user(session, [invoice_id], company_id)
    if not found:
        return None
    inv, em, co = found[0]
    prestations = list(
        session.exec(
            select(PrestationLine)
            .where(PrestationLine.invoice_id == invoice_id)
            .order_by(col(PrestationLine.id))
        ).all()
    )
    payments = list(
        session.exec(
            select(Payment, PaymentInvoice)
            .join(PaymentInvoice, col(PaymentInvoice.payment_id) == Payment.id)
            .where(PaymentInvoice.invoice_id == invoice_id)
            .order_by(col(Payment.created_at))
        ).all()
    )
    payment_ids = [p.id for p, _ in payments]
    documents = list(
        session.exec(
            select(Document)
            .where(sa.or_(col(Document.invoice_id) == invoice_id, col(Document.payment_id).in_(payment_ids)))
            .order_by(col(Document.created_at))
        ).all()
    )
    messages = list(
        session.exec(
            select(InvoiceMessage)
            .where(InvoiceMessage.invoice_id == invoice_id)
            .order_by(col(InvoiceMessage.seq))
        ).all()
    )
    return InvoiceDetail(inv, em, co, prestations, payments, documents, messages)


def search_emitters(session: Session, q: str | None, limit: int = 50) -> list[Emitter]:
    query = select(Emitter)
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Emitter.name).like(like), sa.func.lower(Emitter.code).like(like))
        )
    return list(session.exec(query.order_by(col(Emitter.name)).limit(limit)).all())


def distinct_values(session: Session, column: sa.Column[str]) -> list[str]:
    """Choices of the "SÉLECTIONNER" lists (prestation, operation type), for an indexed column.

    A walk from value to next value on the column's index (one seek per distinct value): a plain
    ``SELECT DISTINCT`` reads every prestation line (1.5 million at a million invoices), which made
    the invoice list page take half a second on PostgreSQL and on SQLite without statistics.
    """
    following = column.table.alias()
    walk = select(sa.func.min(column).label("value")).cte("walk", recursive=True)
    walk = walk.union_all(
        select(
            select(sa.func.min(following.c[column.name]))
            .where(following.c[column.name] > walk.c.value)
            .scalar_subquery()
        ).where(walk.c.value.is_not(None))
    )
    values = session.exec(select(walk.c.value).where(walk.c.value.is_not(None)).order_by(walk.c.value))
    return [v for v in values.all() if v]


def payment_invoices(session: Session, payment_id: str) -> list[tuple[Invoice, Emitter, PaymentInvoice]]:
    """A payment's invoices with their emitters and links, by number, in one query: what the
    reservation, the settlement, Fatourati's token, the confirmation e-mail and the receipt's
    verification page each read."""
    return list(
        session.exec(
            select(Invoice, Emitter, PaymentInvoice)
            .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(PaymentInvoice.payment_id == payment_id)
            .order_by(col(Invoice.number))
        ).all()
    )
