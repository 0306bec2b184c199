"""The numbered message log of an invoice ("Liste des messages" of the guide).

Numbers are per invoice and gap-free; the unique (invoice_id, seq) constraint turns a concurrent
writer's collision into an error that the caller's retry resolves. ``dedupe_key`` makes a retried
activity write its line once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

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
) -> InvoiceMessage | None:
    if dedupe_key is not None:
        existing = session.exec(select(InvoiceMessage).where(InvoiceMessage.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    last = session.exec(
        select(sa.func.max(InvoiceMessage.seq)).where(InvoiceMessage.invoice_id == invoice_id)
    ).one()
    message = InvoiceMessage(
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
    session.add(message)
    session.flush()
    return message
