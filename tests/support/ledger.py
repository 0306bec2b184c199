"""Reading the ledger back in a test: an invoice as it is now, not as the session last saw it."""

from __future__ import annotations

from sqlmodel import Session

from portnet.models import Invoice


def refreshed(db: Session, invoice: Invoice) -> Invoice:
    db.expire_all()
    fresh = db.get(Invoice, invoice.id)
    assert fresh is not None
    return fresh


def invoice_status(db: Session, invoice: Invoice) -> str:
    return refreshed(db, invoice).status
