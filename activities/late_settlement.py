"""A settlement that comes too late: money a partner took for an attempt that had already given its
invoices back (an abandoned settle, a retry after the release).

``settle_payment`` keeps that money as unapplied money, through the one small function here, so that
it can be pointed at the shared writer of unapplied money (``portnet.unapplied.keep``) once that is
on this branch, without touching the settlement itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from activities.types import SettleInput
from portnet.models import Payment, UnappliedPayment
from portnet.statuses import Channel

# The partner that holds the money, by the channel's message-log function (Fatourati: its own name).
PARTNER = {"CMI": "cmi", "AMA": "amanpay", "FIN": "finance"}


def partner_of(channel: str) -> str:
    if channel == Channel.CMI_FATOURATI.value:
        return "fatourati"
    return PARTNER.get(Channel(channel).message_function, channel)


def keep_unapplied_settlement(session: Session, payment: Payment, inp: SettleInput) -> int:
    """Money a partner took for an attempt that no longer holds its invoices: one unapplied-money row
    per attempt and transaction (a retry finds it). The one place to point at the shared writer of
    unapplied money."""
    reference = f"{inp.channel}:{inp.transaction_id}"
    found = select(UnappliedPayment).where(UnappliedPayment.transaction_number == reference)
    row = session.exec(found).first()
    if row is None:
        row = UnappliedPayment(
            partner=partner_of(inp.channel),
            transaction_number=reference,
            payment_id=payment.id,
            channel=inp.channel,
            amount=payment.amount,
            reason=f"Paiement accepté après la libération des factures (tentative {payment.status})",
            paid_at=datetime.fromisoformat(inp.paid_at).replace(tzinfo=None),
        )
        session.add(row)
        session.flush()
    assert row.id is not None
    return row.id
