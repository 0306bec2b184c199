"""The receipt as the status page waits for it: issued a moment after the settlement.

New attempts get their receipt from its own activity once the settlement has committed
(activities/receipts.py), so the ledger says "succeeded" a few tens of milliseconds before the
receipt is stored, and the status page reloads as soon as the status changes. The page waits that
moment out (``receipt_issued``) rather than offer no receipt; if the receipt is still missing it says
it is coming and looks again, for ``RECEIPT_SOON`` after the payment at most: later, a receipt that
could not be issued is finance's to see to (the Web UI shows the failed activity).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from portnet.db import get_engine
from portnet.models import Document, Payment, utcnow

RECEIPT_SOON = timedelta(minutes=2)
# How long a page waits for the receipt before it says it is coming, and how often it looks.
RECEIPT_WAIT = 1.0
RECEIPT_LOOK = 0.1


def just_paid(payment: Payment) -> bool:
    """Settled less than RECEIPT_SOON ago: its receipt is worth waiting for."""
    return payment.paid_at is not None and utcnow() - payment.paid_at < RECEIPT_SOON


def _receipt_id(payment_id: str) -> int | None:
    with Session(get_engine()) as session:
        return session.exec(
            select(Document.id).where(Document.payment_id == payment_id, Document.kind == "receipt")
        ).first()


def _row(payment_id: str) -> Payment | None:
    with Session(get_engine(), expire_on_commit=False) as session:
        return session.get(Payment, payment_id)


async def read_again(payment: Payment) -> Payment:
    """The row as it is now, for a page that read it before the settlement the workflow then
    reported: its payment date decides whether the receipt is worth waiting for (without it, a
    receipt a moment away read "contactez le service finance"). Its own session, in a worker
    thread: the request's session keeps its objects (the user) loaded."""
    return await run_in_threadpool(_row, payment.id) or payment


async def receipt_issued(payment_id: str) -> int | None:
    """The receipt's document id, waited for up to RECEIPT_WAIT; each read in a worker thread, no
    connection held between them."""
    for _ in range(round(RECEIPT_WAIT / RECEIPT_LOOK)):
        await asyncio.sleep(RECEIPT_LOOK)
        found = await run_in_threadpool(_receipt_id, payment_id)
        if found is not None:
            return found
    return None
