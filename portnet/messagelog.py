"""The numbered message log of an invoice ("Liste des messages" of the guide).

Numbers are per invoice and gap-free; the unique (invoice_id, seq) constraint turns a concurrent
writer's collision into an error that the caller's retry resolves. ``dedupe_key`` makes a retried
activity write its line once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from portnet.models import InvoiceMessage, utcnow


def append_message(
    session: Session,
    invoice_id: int,
    *,
    function: str,
    state: str,
    observations: str,
    name: str | None = None,
    user_name: str | None = None,
    receiver: str | None = None,
    needs_reply: bool = False,
    payment_id: str | None = None,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Writes the invoice's next line; False when ``dedupe_key`` was written already (a retry).

    One query reads both the last number and whether the key is taken, and the line is a plain
    INSERT (no ORM object to track): settling a card payment writes two lines per invoice, and the
    unit of work's flushes were a good part of the settlement's CPU.
    """
    if any(isinstance(pending, InvoiceMessage) for pending in session.new):
        session.flush()  # a line added as an object (the seed's first line) counts in the numbering
    messages = InvoiceMessage.__table__  # type: ignore[attr-defined]
    taken = (
        sa.select(sa.literal(True)).where(messages.c.dedupe_key == dedupe_key).scalar_subquery()
        if dedupe_key is not None
        else sa.literal(False)
    )
    last, already = session.execute(
        sa.select(sa.func.max(messages.c.seq), taken).where(messages.c.invoice_id == invoice_id)
    ).one()
    if already:
        return False
    session.execute(
        sa.insert(messages).values(
            invoice_id=invoice_id,
            seq=(last or 0) + 1,
            function=function,
            name=name,
            state=state,
            observations=observations,
            user_name=user_name,
            receiver=receiver,
            needs_reply=needs_reply,
            payment_id=payment_id,
            dedupe_key=dedupe_key,
            created_at=at or utcnow(),
        )
    )
    return True
