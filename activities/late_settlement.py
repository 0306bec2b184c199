"""A settlement that comes too late: money a partner took for an attempt that had already given its
invoices back (an abandoned settle, a retry after the release).

``settle_payment`` keeps that money as unapplied money through the ledger's one writer
(``portnet.unapplied.keep``), keyed by the partner's transaction as the callback routes and the
reconciliation key it, so that the same money reported twice makes one row.
"""

from __future__ import annotations

from datetime import datetime

from activities.types import SettleInput
from portnet import unapplied
from portnet.models import Payment
from portnet.statuses import Channel

AMANPAY_CHANNELS = frozenset({Channel.AMANPAY_CODE, Channel.AMANPAY_AMANTY, Channel.AMANPAY_PAYDIRECT})


def transaction_key(channel: Channel, transaction_id: str) -> str:
    """The unapplied row's key: Fatourati's transaction number as is, Amanpay's prefixed as its
    notification route prefixes it, the others by channel (no other writer reports their money)."""
    if channel == Channel.CMI_FATOURATI:
        return transaction_id
    if channel in AMANPAY_CHANNELS:
        return f"amanpay:{transaction_id}"
    return f"{channel.value}:{transaction_id}"


def keep_unapplied_settlement(payment: Payment, inp: SettleInput) -> int:
    """Money a partner took for an attempt that no longer holds its invoices: one unapplied-money row
    per transaction (a retry finds it), in its own transaction."""
    channel = Channel(inp.channel)
    return unapplied.keep(
        unapplied.UnappliedMoney(
            channel=channel,
            transaction_number=transaction_key(channel, inp.transaction_id),
            amount=payment.amount,
            reason=f"Paiement accepté après la libération des factures (tentative {payment.status})",
            payment_id=payment.id,
            paid_at=datetime.fromisoformat(inp.paid_at).replace(tzinfo=None),
        )
    )
