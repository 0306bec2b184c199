"""The receipt issued by its own activity once the settlement has committed (rule
``receipt-after-settlement``), on the time-skipping server with the real ledger: the payer sees
"succeeded" without waiting for the PDF, the confirmation e-mail (which attaches it) waits for it,
and nothing that happens to the receipt undoes the payment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities import receipts
from activities.types import IssuedReceipt, SettleInput
from portnet.models import Document, Invoice, Payment
from tests.support.fakes import PartnerFakes
from tests.support.gates import Gate, activity_spans, taken_in
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import (
    activity_name,
    eventually,
    offline_input,
    start,
    wait_status,
    worker_with_fakes,
)
from workflows.payment import PaymentWorkflow
from workflows.types import FinanceDecision, PaymentInput

CONFIRMED = FinanceDecision(True, "finance", "chèque encaissé")


def gated_receipt(gate: Gate) -> Callable[..., object]:
    @activity.defn(name="issue_receipt")
    async def issue_receipt(inp: SettleInput) -> IssuedReceipt:
        await gate.passing()
        return await asyncio.to_thread(receipts.issue_receipt, inp)

    return issue_receipt


async def confirmed_by_finance(
    env: WorkflowEnvironment, inp: PaymentInput, queue: str
) -> WorkflowHandle[Any, Any]:
    """The declared cheque or transfer confirmed by finance: the attempt settles from here."""
    handle = await start(env.client, inp, queue)
    await wait_status(handle, "awaiting_confirmation")
    assert (await handle.execute_update(PaymentWorkflow.finance_decide, CONFIRMED)).accepted
    return handle


def mailed(fakes: PartnerFakes) -> list[str]:
    return [kind for kind, _ in fakes.mails]


def stored_receipt(db: Session, payment_id: str) -> Document | None:
    db.expire_all()
    return db.exec(
        select(Document).where(Document.payment_id == payment_id, Document.kind == "receipt")
    ).first()


async def test_the_payment_succeeds_before_its_receipt_and_the_email_waits_for_it(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    fakes = PartnerFakes()
    receipt = Gate()
    async with worker_with_fakes(
        time_env.client, [*fakes.fatourati_and_mail(), gated_receipt(receipt)]
    ) as queue:
        handle = await confirmed_by_finance(time_env, inp, queue)
        await receipt.reached()
        # The ledger already says "succeeded" (what the API and the status page read); no receipt yet,
        # and the confirmation e-mail, which attaches it, has not gone.
        payment = db.get(Payment, inp.payment_id)
        assert payment is not None
        db.refresh(payment)
        assert payment.status == "succeeded" and status_of(db, invoice) in ("payment_confirmed", "paid")
        assert stored_receipt(db, inp.payment_id) is None
        assert "payment_confirmed" not in mailed(fakes)
        receipt.open()
        result = await handle.result()
        issued, mail = (
            await activity_spans(handle, "issue_receipt"),
            await activity_spans(handle, "send_payment_email"),
        )
    doc = stored_receipt(db, inp.payment_id)
    assert doc is not None and doc.content is not None and doc.content.startswith(b"%PDF")
    assert result.status == "succeeded" and result.receipt_document_id == doc.id
    assert len(issued) == 1 and len(mail) == 1 and issued[0][1] < mail[0][0]  # the e-mail after the receipt


async def test_a_receipt_that_cannot_be_issued_leaves_the_payment_succeeded(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="bank_transfer")
    fakes = PartnerFakes()

    @activity.defn(name="issue_receipt")
    async def issue_receipt(inp: SettleInput) -> IssuedReceipt:
        raise ApplicationError("the receipt's layout refused its lines", non_retryable=True)

    async with worker_with_fakes(time_env.client, [*fakes.fatourati_and_mail(), issue_receipt]) as queue:
        handle = await confirmed_by_finance(time_env, inp, queue)
        result = await handle.result()
    assert result.status == "succeeded" and result.receipt_document_id is None
    assert status_of(db, invoice) in ("payment_confirmed", "paid")
    assert "payment_confirmed" in mailed(fakes)  # the e-mail goes without it
    assert stored_receipt(db, inp.payment_id) is None


async def test_an_operator_cancel_while_the_receipt_is_issued_changes_nothing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    fakes = PartnerFakes()
    receipt = Gate()
    async with worker_with_fakes(
        time_env.client, [*fakes.fatourati_and_mail(), gated_receipt(receipt)]
    ) as queue:
        handle = await confirmed_by_finance(time_env, inp, queue)
        await receipt.reached()
        await handle.cancel()
        await taken_in(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        receipt.open()
        result = await handle.result()
        issued = await activity_spans(handle, "issue_receipt")
    doc = stored_receipt(db, inp.payment_id)
    assert result.status == "succeeded" and doc is not None and result.receipt_document_id == doc.id
    assert len(issued) == 1 and receipt.calls == 1  # issued once, not restarted by the cancel
    assert "payment_confirmed" in mailed(fakes)
    assert status_of(db, invoice) in ("payment_confirmed", "paid")


async def test_the_emitters_notices_do_not_wait_for_the_receipt(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """ANP's notice (its "paid" follows its acknowledgement) goes out while the receipt is still being
    laid out: a receipt that takes long, or fails for a day, never holds an emitter's "paid" back."""
    invoice = make_invoice(emitter_code="611AGEN001")
    inp = offline_input(invoice.company_id, [invoice.id or 0], channel="cheque")
    fakes = PartnerFakes()
    mail_and_tokens = [f for f in fakes.fatourati_and_mail() if activity_name(f) != "send_payment_email"]
    receipt = Gate()
    async with worker_with_fakes(
        time_env.client, [*mail_and_tokens, *fakes.silent_emitters(), gated_receipt(receipt)]
    ) as queue:
        handle = await confirmed_by_finance(time_env, inp, queue)
        await receipt.reached()

        async def notice_sent() -> bool:
            spans = await activity_spans(handle, "send_settlement_notice")
            return len(spans) == 1 and spans[0][1] < 1 << 62

        await eventually(notice_sent)
        assert status_of(db, invoice) == "awaiting_partner"  # the notice went out, the receipt not yet
        assert "payment_confirmed" not in mailed(fakes)  # the e-mail waits for it
        receipt.open()
        result = await handle.result()
    assert result.status == "succeeded" and result.receipt_document_id is not None
    assert "payment_confirmed" in mailed(fakes)
