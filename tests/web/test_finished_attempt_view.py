"""A finished attempt is shown from the ledger, which then knows all of it: its workflow is not asked
(a query costs a workflow task, or a replay of the whole history once the workflow is closed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from activities.ledger import settle_payment
from activities.types import Decline, PayerInfo, SettleInput
from portnet.models import Document, Invoice, Payment
from tests.support.settlements import reserved
from web.attempts import read_view


class _NotAsked:
    """A Temporal client that fails the test if the workflow is queried."""

    def get_workflow_handle(self, workflow_id: str) -> Any:
        raise AssertionError(f"workflow {workflow_id} queried for a finished attempt")


def _settled(db: Session, invoice: Invoice, decline: Decline | None = None) -> tuple[Payment, int]:
    payment_id = reserved(invoice)
    settlement = settle_payment(
        SettleInput(
            payment_id=payment_id,
            channel="cmi_card",
            user_name="sataa",
            transaction_id="T-" + payment_id,
            auth_code="123456",
            masked_pan="400000******0010",
            paid_at=datetime.now(UTC).isoformat(),
            payer=PayerInfo("Payeur", "payeur@example.ma"),
            declines=[decline] if decline else [],
        )
    )
    payment = db.get(Payment, payment_id)
    assert payment is not None
    db.refresh(payment)
    return payment, settlement.receipt_document_id


async def test_a_settled_attempt_is_read_from_the_ledger(
    db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    decline = Decline("T-DECLINED", "05", "Refusée par l'émetteur", datetime.now(UTC).isoformat())
    payment, receipt_id = _settled(db, make_invoice(emitter_code="611AGEN001"), decline)

    view = await read_view(_NotAsked(), payment)  # type: ignore[arg-type]

    assert view.status == "succeeded" and not view.from_ledger
    assert view.transaction_id == payment.partner_transaction_id
    assert view.receipt_document_id == receipt_id
    assert view.declines == 1 and view.last_decline is not None and "05" in view.last_decline
    # ANP acknowledges its settlement notice later: until then the ledger says it is awaited.
    assert view.awaiting_emitters == ["611AGEN001"]
    receipt = db.get(Document, receipt_id)
    assert receipt is not None and receipt.content is not None and receipt.content.startswith(b"%PDF")


async def test_a_directly_settled_invoice_awaits_no_emitter(
    db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    payment, _ = _settled(db, make_invoice())  # PORTNET's own invoice

    view = await read_view(_NotAsked(), payment)  # type: ignore[arg-type]

    assert view.status == "succeeded" and view.declines == 0 and view.last_decline is None
    assert view.awaiting_emitters == []
