"""Settlement notices to emitters (ANP, MARSA MAROC, Bureau Veritas...), who acknowledge later.

The notice id is derived from the payment and the emitter, so a retried call is the same notice and
the emitter answers it once. Signed with the shared emitter key under the label
``EMITTER_SETTLEMENT_NOTICE`` (portnet/protocols/emitter.py), so it can never pass for an emitter's
acknowledgement, which is signed under ``EMITTER_ACK``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import partner_client
from activities.ledger import mark_awaiting_partner, mark_invoices_paid
from activities.types import MarkPaidInput
from portnet.db import session_scope
from portnet.models import Emitter, Invoice, Payment, PaymentInvoice
from portnet.money import total
from portnet.protocols import emitter as emitter_protocol
from portnet.settings import get_settings
from portnet.statuses import InvoiceStatus, PaymentStatus


@dataclass
class EmitterNoticeInput:
    payment_id: str
    emitter_code: str
    invoice_numbers: list[str]
    transaction_id: str
    paid_at: str


SIGNATURE_HEADER = emitter_protocol.SIGNATURE_HEADER
notice_id = emitter_protocol.notice_id


def sign(body: bytes, key: str) -> str:
    return emitter_protocol.sign(key, emitter_protocol.Message.SETTLEMENT_NOTICE, body)


def _notified_invoices(inp: EmitterNoticeInput) -> list[tuple[Invoice, PaymentInvoice]]:
    with session_scope() as session:
        return list(
            session.exec(
                select(Invoice, PaymentInvoice)
                .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
                .where(
                    PaymentInvoice.payment_id == inp.payment_id, col(Invoice.number).in_(inp.invoice_numbers)
                )
            ).all()
        )


@activity.defn
async def send_settlement_notice(inp: EmitterNoticeInput) -> str:
    settings = get_settings()
    nid = notice_id(inp.payment_id, inp.emitter_code)
    rows = await asyncio.to_thread(_notified_invoices, inp)  # the ledger off the event loop
    invoices = [{"number": inv.number, "amount_ttc": f"{link.amount_ttc:.2f}"} for inv, link in rows]
    amount = total(link.amount_ttc for _, link in rows)
    body = json.dumps(
        {
            "notice_id": nid,
            "payment_id": inp.payment_id,
            "invoices": invoices,
            "amount": f"{amount:.2f}",
            "transaction_id": inp.transaction_id,
            "paid_at": inp.paid_at,
            "ack_url": settings.public_base_url.rstrip("/") + "/api/v1/callbacks/emitters/ack",
        },
        separators=(",", ":"),
    ).encode()
    url = f"{settings.emitter_notify_url.rstrip('/')}/{inp.emitter_code}/settlements"
    client = partner_client("emitters", timeout=20)
    response = await client.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, settings.emitter_shared_key),
            "Idempotency-Key": nid,
        },
    )
    if response.status_code in (401, 403, 404, 422):
        # Our configuration is wrong, not the emitter busy: retrying will not help.
        raise ApplicationError(
            f"emitter {inp.emitter_code} refused the notice: HTTP {response.status_code}",
            type="BusinessRefusal",
            non_retryable=True,
        )
    response.raise_for_status()
    mark_awaiting_partner(inp.payment_id, inp.emitter_code, nid)
    return nid


# The invoices an emitter's acknowledgement can still turn paid: settled, waiting for that emitter.
ACKNOWLEDGEABLE = (InvoiceStatus.PAYMENT_CONFIRMED.value, InvoiceStatus.AWAITING_PARTNER.value)


def apply_late_acknowledgement(payment_id: str, emitter_code: str, emitter_ack_id: str) -> bool:
    """An emitter's verified acknowledgement that came after the payment's workflow closed (it no
    longer waits for acknowledgements): the invoices it acknowledges are paid all the same, through
    the ledger's one writer of that step (``mark_invoices_paid``: idempotent, one message per invoice).

    Only for a settled payment, and only for the invoices of that emitter still waiting for it;
    returns whether any was (the web route answers "acknowledged", else "late")."""
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.status != PaymentStatus.SUCCEEDED.value:
            return False
        waiting = session.exec(
            select(Invoice.id)
            .join(Emitter, col(Emitter.id) == Invoice.emitter_id)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(
                PaymentInvoice.payment_id == payment_id,
                Emitter.code == emitter_code,
                col(Invoice.status).in_(ACKNOWLEDGEABLE),
            )
        ).all()
    if not waiting:
        return False
    mark_invoices_paid(MarkPaidInput(payment_id, emitter_code, emitter_ack_id))
    return True


ACTIVITIES: list[Callable[..., Any]] = [send_settlement_notice]
