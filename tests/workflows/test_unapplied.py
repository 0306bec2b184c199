"""Unapplied money applied by finance, on the time-skipping server with the real ledger.

The money is kept by the real callback routes (in process), then applied through web/unapplied.py,
which starts ``ApplyUnappliedWorkflow``: the payment is recorded on the money's OWN channel (Amanpay
money is an Amanpay payment, Fatourati money a Fatourati one); a live attempt holding the invoice
makes the application refused with nothing changed; applying twice applies once; every ledger step
is idempotent under an activity retry.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from activities.ledger import settle_payment
from activities.types import PayerInfo, SettleInput
from activities.unapplied import (
    MarkAppliedInput,
    UnappliedHoldInput,
    hold_for_unapplied,
    mark_unapplied_applied,
)
from portnet.db import get_engine
from portnet.models import (
    Document,
    Invoice,
    InvoiceHold,
    InvoiceMessage,
    Payment,
    UnappliedPayment,
    User,
)
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import fatourati
from portnet.settings import Settings, get_settings
from tests.support.fakes import PartnerFakes
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import payment_input, start, wait_status, worker_with_fakes
from web.app import create_app
from web.finance import FinanceError
from web.unapplied import apply_unapplied, refund_unapplied
from workflows.payment import PaymentWorkflow


def order_id() -> str:
    return "PN" + secrets.token_hex(6).upper()


@dataclass
class Finance:
    """The portal's callback routes and finance's application, against one worker."""

    env: WorkflowEnvironment
    settings: Settings
    portal: httpx.AsyncClient
    user: User
    db: Session
    applications: list[int] = field(default_factory=list)

    async def amanpay_paid(self, amount: str, channel: str) -> UnappliedPayment:
        """Amanpay notifies a payment for an order we do not know: kept unapplied."""
        s = self.settings
        transaction = "TSH" + secrets.token_hex(5).upper()
        oid = order_id()
        body = amanpay_protocol.dumps(
            {
                "merchant_id": s.amanpay_merchant_id,
                "order_id": oid,
                "amount": amount,
                "status": "paid",
                "event_id": f"{oid}-paid",
                "transaction_id": transaction,
                "paid_at": "2026-11-29T10:00:00+00:00",
                "channel": channel,
            }
        )
        signature = amanpay_protocol.sign(s.amanpay_secret_key, amanpay_protocol.Message.NOTIFICATION, body)
        reply = await self.portal.post(
            "/api/v1/callbacks/amanpay",
            content=body,
            headers={"Content-Type": "application/json", "X-Amanpay-Signature": signature},
        )
        assert reply.status_code == 200 and reply.json() == {"status": "unapplied"}, reply.text
        return self.row(f"amanpay:{transaction}")

    async def fatourati_paid(self, amount: str) -> UnappliedPayment:
        """CMI Fatourati pays a reference we never issued: kept unapplied."""
        s = self.settings
        transaction = "FTR" + secrets.token_hex(6).upper()
        fields: dict[str, Any] = {
            "tokenRef": "1089" + f"{secrets.randbelow(10**9):09d}",
            "orderId": order_id(),
            "totalAmount": amount,
            "currency": "504",
            "transactionDate": datetime.now(UTC).isoformat(),
            "transactionNumber": transaction,
            "channel": "cashplus",
            "operator": "CashPlus",
            "decisionCode": "0",
            "merchantCode": s.fatourati_merchant_code,
            "storeId": s.fatourati_store_id,
        }
        reply = await self.portal.post(
            "/api/v1/callbacks/fatourati",
            content=json.dumps(fatourati.signed(fields, fatourati.CALLBACK, s.fatourati_api_key)),
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 200 and reply.json()["status"] == "RECEIVED_UNAPPLIED", reply.text
        return self.row(transaction)

    def row(self, transaction_number: str) -> UnappliedPayment:
        self.db.expire_all()
        return self.db.exec(
            select(UnappliedPayment).where(UnappliedPayment.transaction_number == transaction_number)
        ).one()

    async def apply(self, row: UnappliedPayment, invoice: Invoice) -> Any:
        """As a request does it: its own session (which the web layer closes before waiting)."""
        assert row.id is not None
        unapplied_id, number = row.id, invoice.number
        self.applications.append(unapplied_id)
        with Session(get_engine()) as request_db:
            user = request_db.exec(select(User).where(User.username == "finance")).one()
            return await apply_unapplied(
                self.env.client, self.settings, request_db, user, unapplied_id, number
            )

    def payments_of(self, row: UnappliedPayment) -> list[Payment]:
        self.db.expire_all()
        return list(self.db.exec(select(Payment).where(col(Payment.id) == f"PNU{row.id:09d}")).all())

    def messages(self, invoice: Invoice) -> list[InvoiceMessage]:
        self.db.expire_all()
        return list(
            self.db.exec(
                select(InvoiceMessage)
                .where(InvoiceMessage.invoice_id == invoice.id)
                .order_by(col(InvoiceMessage.seq))
            ).all()
        )


@pytest.fixture
def fakes() -> PartnerFakes:
    return PartnerFakes()


@pytest.fixture
def finance_for(time_env: WorkflowEnvironment, db: Session, fakes: PartnerFakes) -> Callable[[], Any]:
    @asynccontextmanager
    async def running() -> AsyncIterator[Finance]:
        async with worker_with_fakes(time_env.client, fakes.fatourati_and_mail()) as queue:
            settings = get_settings().model_copy(update={"temporal_task_queue": queue})
            app = create_app(settings, temporal_client=time_env.client)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://portal"
            ) as portal:
                user = db.exec(select(User).where(User.username == "finance")).one()
                finance = Finance(time_env, settings, portal, user, db)
                yield finance
                # Each application goes on after answering (e-mail, notices): let it end while the
                # worker runs, or the shared time-skipping server would wait for it forever.
                for unapplied_id in dict.fromkeys(finance.applications):
                    await time_env.client.get_workflow_handle(f"unapplied-{unapplied_id}").result()

    return running


@pytest.mark.parametrize(
    ("where_paid", "channel", "function"),
    [("tashilat", "amanpay_code", "AMA"), ("amanty", "amanpay_amanty", "AMA")],
)
async def test_amanpay_money_applied_by_finance_is_an_amanpay_payment(
    finance_for: Callable[[], Any],
    make_invoice: Callable[..., Invoice],
    fakes: PartnerFakes,
    where_paid: str,
    channel: str,
    function: str,
) -> None:
    invoice = make_invoice()
    async with finance_for() as finance:
        row = await finance.amanpay_paid("120.00", where_paid)
        assert row.channel == channel and row.status == "open" and row.paid_at is not None
        outcome = await finance.apply(row, invoice)
        assert (outcome.status, outcome.channel, outcome.invoice_status) == ("applied", channel, "paid")
        [payment] = finance.payments_of(row)
        assert payment.channel == channel and payment.status == "succeeded"
        assert str(payment.amount) == "120.00" and payment.partner_transaction_id == row.transaction_number
        assert payment.paid_at == row.paid_at  # when the payer paid, not when finance applied it
        assert status_of(finance.db, invoice) == "paid"
        names = [m.name for m in finance.messages(invoice)]
        assert f"{function}_PAY_OK" in names and "FIN_UNAPPLIED_APPLIED" in names
        applied = finance.row(row.transaction_number)
        assert (applied.status, applied.invoice_id, applied.decided_by) == ("applied", invoice.id, "finance")
        receipt = finance.db.exec(select(Document).where(Document.payment_id == payment.id)).one()
        assert receipt.kind == "receipt"
        assert finance.db.get(InvoiceHold, invoice.id) is None
    assert [kind for kind, _ in fakes.mails] == ["payment_confirmed"]


async def test_fatourati_money_applied_by_finance_is_a_fatourati_payment(
    finance_for: Callable[[], Any], make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="200.00", tva="40.00")
    async with finance_for() as finance:
        row = await finance.fatourati_paid("240.00")
        assert row.channel == "cmi_fatourati" and row.partner == "fatourati"
        outcome = await finance.apply(row, invoice)
        assert outcome.channel == "cmi_fatourati"
        [payment] = finance.payments_of(row)
        assert payment.channel == "cmi_fatourati" and str(payment.amount) == "240.00"
        assert "CMI_PAY_OK" in [m.name for m in finance.messages(invoice)]
        assert status_of(finance.db, invoice) == "paid"


async def test_applying_while_a_live_attempt_holds_the_invoice_is_refused_and_changes_nothing(
    finance_for: Callable[[], Any], make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    async with finance_for() as finance:
        row = await finance.amanpay_paid("120.00", "tashilat")
        inp = payment_input(invoice.company_id, [invoice.id or 0])
        attempt = await start(finance.env.client, inp, finance.settings.temporal_task_queue)
        await wait_status(attempt, "awaiting_payer")
        before = [m.name for m in finance.messages(invoice)]

        with pytest.raises(FinanceError) as refused:
            await finance.apply(row, invoice)
        assert refused.value.status_code == 409
        assert f"tentative {inp.payment_id}" in refused.value.message
        assert "en cours de paiement" in refused.value.message
        # Nothing changed: the row is open, the attempt still holds the invoice, no payment, no line.
        assert finance.row(row.transaction_number).status == "open"
        assert finance.payments_of(row) == []
        assert status_of(finance.db, invoice) == "in_payment"
        hold = finance.db.get(InvoiceHold, invoice.id)
        assert hold is not None and hold.payment_id == inp.payment_id
        assert [m.name for m in finance.messages(invoice)] == before
        assert (await attempt.query(PaymentWorkflow.state)).status == "awaiting_payer"  # type: ignore[union-attr]

        # Once the attempt let go, the same money applies.
        await attempt.signal(PaymentWorkflow.cancel, "Annulé par le payeur")
        assert (await attempt.result()).status == "cancelled"
        outcome = await finance.apply(row, invoice)
        assert outcome.status == "applied" and status_of(finance.db, invoice) == "paid"


async def test_applying_an_invoice_already_paid_or_too_dear_is_refused(
    finance_for: Callable[[], Any], make_invoice: Callable[..., Invoice]
) -> None:
    paid, dear = make_invoice(status="paid"), make_invoice(ht="1000.00", tva="200.00")
    async with finance_for() as finance:
        row = await finance.amanpay_paid("120.00", "tashilat")
        with pytest.raises(FinanceError) as refused:
            await finance.apply(row, paid)
        assert refused.value.status_code == 409 and "n'est plus à régler" in refused.value.message
        with pytest.raises(FinanceError) as short:
            await finance.apply(row, dear)
        assert short.value.status_code == 422 and "ne couvre pas" in short.value.message
        assert finance.row(row.transaction_number).status == "open" and finance.payments_of(row) == []
        assert status_of(finance.db, dear) == "unpaid"


async def test_applying_twice_applies_once(
    finance_for: Callable[[], Any], make_invoice: Callable[..., Invoice]
) -> None:
    first, other = make_invoice(), make_invoice()
    async with finance_for() as finance:
        row = await finance.fatourati_paid("120.00")
        # A double click: both requests join the same application and get the same answer.
        answers = await asyncio.gather(finance.apply(row, first), finance.apply(row, first))
        assert {(a.status, a.payment_id) for a in answers} == {("applied", f"PNU{row.id:09d}")}
        with pytest.raises(FinanceError) as again:
            await finance.apply(row, other)
        assert again.value.status_code == 409
        assert len(finance.payments_of(row)) == 1
        assert [m.name for m in finance.messages(first)].count("FIN_UNAPPLIED_APPLIED") == 1
        assert status_of(finance.db, other) == "unpaid"
        assert row.id is not None
        with pytest.raises(FinanceError) as refund:
            refund_unapplied(finance.db, finance.user, row.id, "trop tard")
        assert refund.value.status_code == 409 and finance.row(row.transaction_number).status == "applied"


async def test_every_ledger_step_is_idempotent_under_retries(
    finance_for: Callable[[], Any], make_invoice: Callable[..., Invoice]
) -> None:
    """Temporal runs an activity again after a crash between its commit and its report."""
    invoice = make_invoice()
    async with finance_for() as finance:
        row = await finance.amanpay_paid("120.00", "amanty")
    assert row.id is not None
    ask = UnappliedHoldInput(row.id, invoice.number, finance.user.id, "finance")
    held = hold_for_unapplied(ask)
    assert held.ok and held.channel == "amanpay_amanty"
    assert hold_for_unapplied(ask) == held
    settle = SettleInput(
        payment_id=held.payment_id,
        channel=held.channel,
        user_name="finance",
        transaction_id=held.transaction_id,
        auth_code=None,
        masked_pan=None,
        paid_at=held.paid_at,
        payer=PayerInfo(held.payer_name, held.payer_email),
    )
    assert settle_payment(settle) == settle_payment(settle)
    mark = MarkAppliedInput(row.id, held.payment_id, held.invoice_id, held.invoice_number, "finance")
    mark_unapplied_applied(mark)
    mark_unapplied_applied(mark)
    names = [m.name for m in finance.messages(invoice)]
    assert names.count("FIN_UNAPPLIED_APPLIED") == 1 and names.count("AMA_PAY_OK") == 1
    assert finance.row(row.transaction_number).status == "applied"
    # A later application of the same money (another run, another invoice) is refused.
    late = hold_for_unapplied(UnappliedHoldInput(row.id, make_invoice().number, None, "finance"))
    assert not late.ok and late.error_code == "decided"
