"""A search counts its results only so far: exact below the limit, "more than" past it, and always
far enough to know the page asked for and whether another follows."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from portnet import queries
from portnet.models import Company, Invoice, PrestationLine


def _sataa(db: Session) -> tuple[int, int]:
    company = db.exec(select(Company).where(Company.customs_code == "290240")).one()
    assert company.id is not None
    invoices = len(db.exec(select(Invoice.id).where(Invoice.company_id == company.id)).all())
    return company.id, invoices


def test_small_results_are_counted_exactly(db: Session) -> None:
    company_id, invoices = _sataa(db)
    rows, count = queries.search_invoices(db, queries.InvoiceSearch(page_size=5), company_id)
    assert count == invoices and queries.count_is_exact(count, 1, 5)
    assert len(rows) == min(5, invoices)


def test_past_the_limit_the_count_says_more_than(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    company_id, invoices = _sataa(db)
    assert invoices >= 6, "the seed gives SATAA more invoices than this test's limit"
    monkeypatch.setattr(queries, "COUNT_CAP", 3)

    _, count = queries.search_invoices(db, queries.InvoiceSearch(page_size=1), company_id)
    assert count == 4 and not queries.count_is_exact(count, 1, 1)

    # Page 5 of 1: counted up to the end of that page, and one more (a next page exists).
    rows, count = queries.search_invoices(db, queries.InvoiceSearch(page=5, page_size=1), company_id)
    assert len(rows) == 1 and count == 6 and not queries.count_is_exact(count, 5, 1)

    # A limit the results stay under: exact again.
    monkeypatch.setattr(queries, "COUNT_CAP", invoices)
    _, count = queries.search_invoices(db, queries.InvoiceSearch(page_size=1), company_id)
    assert count == invoices and queries.count_is_exact(count, 1, 1)


def test_filter_choices_are_every_distinct_value_in_order(db: Session) -> None:
    """The index walk gives what SELECT DISTINCT gives, without reading every prestation line."""
    lines = PrestationLine.__table__.c  # type: ignore[attr-defined]
    for column in (lines.prestation, lines.operation_type):
        everything = db.exec(select(column).distinct().order_by(column)).all()
        assert queries.distinct_values(db, column) == [v for v in everything if v]
        assert len(queries.distinct_values(db, column)) > 1
