"""Unapplied money: the one writer of ``unapplied_payment``.

Money a partner reports that no invoice took (paid after the deadline, paid twice, a reference or an
order we cannot place, an amount other than the attempt's) is kept here, never dropped and never
applied silently. Every row records the channel it came through, so that applying it later records
a payment on that channel (Amanpay money stays Amanpay money). Its life: ``open`` -> ``applying``
(an application holds it, and the invoice, like a payment attempt) -> ``applied``; or ``open`` ->
``refund``.

The callback routes keep money through ``keep``; applying runs in ``ApplyUnappliedWorkflow``'s
ledger activities (``claim``, ``mark_applied``); finance's refund decision is ``mark_for_refund``.
Nothing else writes this table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portnet.db import get_engine
from portnet.models import Payment, UnappliedPayment, utcnow
from portnet.money import format_fr
from portnet.statuses import Channel, PaymentStatus

log = logging.getLogger("portnet.unapplied")

OPEN, APPLYING, APPLIED, REFUND = "open", "applying", "applied", "refund"
STATUS_LABELS = {
    OPEN: "Ouvert",
    APPLYING: "En cours d'affectation",
    APPLIED: "Affecté",
    REFUND: "À rembourser",
}

# The partner a channel's money comes from, as finance's list shows it.
PARTNER_OF_CHANNEL: dict[Channel, str] = {
    Channel.CMI_CARD: "cmi",
    Channel.CMI_FATOURATI: "fatourati",
    Channel.AMANPAY_CODE: "amanpay",
    Channel.AMANPAY_AMANTY: "amanpay",
    Channel.AMANPAY_PAYDIRECT: "amanpay",
    Channel.CHEQUE: "finance",
    Channel.BANK_TRANSFER: "finance",
}

# Amanpay names where the payer paid (``channel`` of its notification): Tashilat takes cash codes.
AMANPAY_NOTICE_CHANNELS: dict[str, Channel] = {
    "tashilat": Channel.AMANPAY_CODE,
    "amanty": Channel.AMANPAY_AMANTY,
    "paydirect": Channel.AMANPAY_PAYDIRECT,
}


class UnappliedRefused(Exception):
    """A decision on unapplied money that its state does not allow (a French sentence for finance)."""


@dataclass(frozen=True)
class UnappliedMoney:
    """What a partner paid that no invoice took, as the callback route read it (checked and verified).

    ``transaction_number`` is the partner's own number: one row per partner transaction, so a
    redelivered callback finds its row again.
    """

    channel: Channel
    transaction_number: str
    amount: Decimal
    reason: str
    callback_id: int | None = None
    payment_id: str | None = None  # the attempt it was meant for, when we know it
    partner_reference: str | None = None
    paid_at: datetime | None = None  # when the payer paid, naive UTC

    def __post_init__(self) -> None:
        if not isinstance(self.channel, Channel):
            raise ValueError(f"unknown channel {self.channel!r}")
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"unapplied amount must be a positive Decimal, not {self.amount!r}")
        if not self.transaction_number.strip():
            raise ValueError("unapplied money needs the partner's transaction number")

    @property
    def partner(self) -> str:
        return PARTNER_OF_CHANNEL[self.channel]


def naive_utc(text: str | None) -> datetime | None:
    """A partner's ISO 8601 time (``Z`` or an offset) as the ledger stores times: naive UTC."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


def _by_transaction(db: Session, transaction_number: str) -> UnappliedPayment | None:
    return db.exec(
        select(UnappliedPayment).where(UnappliedPayment.transaction_number == transaction_number)
    ).first()


def keep(money: UnappliedMoney) -> int:
    """Records the money once (a redelivery, or two at once, find the same row); returns its id."""
    with Session(get_engine(), expire_on_commit=False) as db:
        row = _by_transaction(db, money.transaction_number)
        if row is None:
            row = UnappliedPayment(
                partner=money.partner,
                channel=money.channel.value,
                transaction_number=money.transaction_number,
                partner_reference=money.partner_reference,
                payment_id=money.payment_id,
                callback_id=money.callback_id,
                amount=money.amount,
                reason=money.reason,
                paid_at=money.paid_at,
            )
            db.add(row)
            try:
                db.commit()
                log.warning(
                    "%s payment %s for %s kept unapplied: %s",
                    money.partner,
                    money.transaction_number,
                    money.payment_id or "?",
                    money.reason,
                )
            except IntegrityError:
                db.rollback()
                row = _by_transaction(db, money.transaction_number)
                assert row is not None
        assert row.id is not None
        return row.id


def settled_by(payment_id: str | None, transaction_number: str) -> bool:
    """Whether this partner transaction is the one that settled the attempt, in the ledger as it is
    now: a redelivery of its notice after the workflow closed, or the partner's word on it, is the
    attempt's own money, never unapplied money (finance could refund money that paid an invoice).
    ``transaction_number`` bare or as the unapplied rows key it (``amanpay:...``, ``cmi:...``)."""
    if payment_id is None:
        return False
    with Session(get_engine()) as db:
        payment = db.get(Payment, payment_id)
        return (
            payment is not None
            and payment.status == PaymentStatus.SUCCEEDED.value
            and payment.partner_transaction_id in (transaction_number, transaction_number.rpartition(":")[2])
        )


# Why an attempt gives its invoices back early once money of another amount was kept for finance.
OTHER_AMOUNT_RELEASE = "Montant payé différent de la demande : encaissement transmis à la finance"


def amount_differs(expected: Decimal, received: Decimal) -> str:
    """The reason kept for a partner's "paid" whose amount is not the attempt's: the partner collected
    that money, so it is finance's to apply or refund; the attempt never settles on it."""
    return f"Montant différent de la demande : attendu {format_fr(expected)}, reçu {format_fr(received)}"


def channel_of(row: UnappliedPayment) -> Channel:
    """The channel the money came through: the one its application pays on."""
    return Channel(row.channel)


# --- applying: the ledger activities of ApplyUnappliedWorkflow -----------------------------------


def application_payment_id(unapplied_id: int) -> str:
    """The one payment an unapplied row can ever become (``PNU`` + its id)."""
    return f"PNU{unapplied_id:09d}"


def application_workflow_id(unapplied_id: int) -> str:
    return f"unapplied-{unapplied_id}"


def claim(db: Session, unapplied_id: int) -> UnappliedPayment:
    """Takes an open row for its application, in the caller's transaction (with the invoice's hold).

    A row already ``applying`` is its own application resumed (the payment id is the row's), so the
    claim is idempotent; an applied or refunded row refuses.
    """
    row = db.get(UnappliedPayment, unapplied_id)
    if row is None:
        raise UnappliedRefused("Encaissement introuvable.")
    if row.status == APPLYING:
        return row
    if row.status != OPEN:
        raise UnappliedRefused(_decided(row))
    taken = db.execute(
        sa.update(UnappliedPayment)
        .where(col(UnappliedPayment.id) == unapplied_id, col(UnappliedPayment.status) == OPEN)
        .values(status=APPLYING)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise UnappliedRefused("Cet encaissement a été traité entre-temps.")
    db.refresh(row)
    return row


def mark_applied(
    db: Session, unapplied_id: int, invoice_id: int, invoice_number: str, user_name: str
) -> bool:
    """The application's last step; False if the row was already marked (a retried activity)."""
    row = db.get(UnappliedPayment, unapplied_id)
    assert row is not None, unapplied_id
    if row.status == APPLIED:
        return False
    assert row.status == APPLYING, (unapplied_id, row.status)
    row.status, row.invoice_id, row.decided_by, row.decided_at = APPLIED, invoice_id, user_name, utcnow()
    row.note = f"Affecté à la facture {invoice_number}"
    db.add(row)
    return True


def mark_for_refund(unapplied_id: int, user_name: str, note: str) -> UnappliedPayment:
    """Finance decides the money goes back: only while the row is open (never while it is applied)."""
    with Session(get_engine(), expire_on_commit=False) as db:
        row = db.get(UnappliedPayment, unapplied_id)
        if row is None:
            raise UnappliedRefused("Encaissement introuvable.")
        taken = db.execute(
            sa.update(UnappliedPayment)
            .where(col(UnappliedPayment.id) == unapplied_id, col(UnappliedPayment.status) == OPEN)
            .values(
                status=REFUND,
                decided_by=user_name,
                decided_at=utcnow(),
                note=note.strip()[:500] or "À rembourser",
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            db.rollback()
            db.refresh(row)
            raise UnappliedRefused(_decided(row))
        db.commit()
        db.refresh(row)
        return row


def _decided(row: UnappliedPayment) -> str:
    if row.status == APPLYING:
        return "Cet encaissement est en cours d'affectation."
    return "Cet encaissement a déjà été traité."
