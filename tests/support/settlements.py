"""A card attempt as the ledger holds it before and after its settlement, without a workflow: the
receipt tests settle it as a new attempt does (the receipt issued after the settlement)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from activities.ledger import reserve_invoices
from activities.types import PayerInfo, ReserveInput, SettleInput
from portnet.models import Invoice


def reserved(invoice: Invoice) -> str:
    payment_id = "PN" + secrets.token_hex(6).upper()
    reservation = reserve_invoices(
        ReserveInput(
            payment_id=payment_id,
            workflow_id=f"payment-{payment_id}",
            channel="cmi_card",
            company_id=invoice.company_id,
            user_id=None,
            user_name="sataa",
            invoice_ids=[invoice.id or 0],
            payer_email="payeur@example.ma",
        )
    )
    assert reservation.ok, reservation
    return payment_id


def settled_input(payment_id: str) -> SettleInput:
    return SettleInput(
        payment_id=payment_id,
        channel="cmi_card",
        user_name="sataa",
        transaction_id="T-" + payment_id,
        auth_code="123456",
        masked_pan="400000******0010",
        paid_at=datetime.now(UTC).isoformat(),
        payer=PayerInfo("Payeur Sataa", "payeur@example.ma"),
        receipt_after=True,
    )
