"""Cheque and bank transfer on the time-skipping server: finance's decision, the subscription renewal,
the 30-day wait and finance's alert.

The mail activities are replaced by recording fakes (same activity names); the ledger is real. The
HTTP side (declaring, confirming in the back-office) is in tests/integration/test_finance.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from portnet.models import Company, Invoice, InvoiceMessage, Payment
from tests.support.fakes import PartnerFakes
from tests.support.ledger import invoice_status as status_of
from tests.support.workers import (
    offline_input,
    start,
    wait_status,
    worker_with_fakes,
)
from workflows.payment import PaymentWorkflow
from workflows.types import FinanceDecision


def subscription_end(db: Session, company_id: int) -> date | None:
    db.expire_all()
    company = db.get(Company, company_id)
    assert company is not None
    return company.subscription_end


async def test_transfer_renews_the_subscription_only_once_finance_confirms(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice(customs_code="1247")
    invoice.is_subscription = True
    db.add(invoice)
    db.commit()
    company = db.get(Company, invoice.company_id)
    assert company is not None
    company.subscription_end = date(2020, 1, 1)  # long lapsed: renewal counts from the confirmation day
    db.add(company)
    db.commit()
    inp = offline_input(invoice.company_id, [invoice.id or 0])
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        await time_env.sleep(timedelta(days=3))
        assert subscription_end(db, invoice.company_id) == date(2020, 1, 1)
        assert status_of(db, invoice) == "in_payment"
        confirmed_on = (await time_env.get_current_time()).date()
        await handle.signal(
            PaymentWorkflow.finance_decision, FinanceDecision(True, "finance", "relevé du 23/11")
        )
        result = await handle.result()
    assert result.status == "succeeded"
    assert status_of(db, invoice) == "paid"
    end = subscription_end(db, invoice.company_id)
    # One year from the confirmation day (the lapsed end date does not count).
    assert end is not None and timedelta(days=364) <= end - confirmed_on <= timedelta(days=367)
    messages = db.exec(
        select(InvoiceMessage)
        .where(InvoiceMessage.invoice_id == invoice.id)
        .order_by(col(InvoiceMessage.seq))
    ).all()
    names = [m.name for m in messages]
    assert "FIN_PAY_DECLARED" in names and "FIN_CONFIRMED" in names and "FIN_SUBSCRIPTION_RENEWED" in names
    assert next(m for m in messages if m.name == "FIN_CONFIRMED").user_name == "finance"


async def test_rejected_cheque_releases_and_logs_the_finance_user(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    invoice.is_subscription = True
    db.add(invoice)
    db.commit()
    before = subscription_end(db, invoice.company_id)
    inp = offline_input(invoice.company_id, [invoice.id or 0], "cheque")
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        await handle.signal(
            PaymentWorkflow.finance_decision, FinanceDecision(False, "finance", "chèque sans provision")
        )
        result = await handle.result()
    assert result.status == "failed"
    assert status_of(db, invoice) == "unpaid"
    assert subscription_end(db, invoice.company_id) == before
    rejected = db.exec(
        select(InvoiceMessage).where(
            InvoiceMessage.invoice_id == invoice.id, InvoiceMessage.name == "FIN_REJECTED"
        )
    ).one()
    assert rejected.user_name == "finance" and "sans provision" in (rejected.observations or "")


async def test_unconfirmed_cheque_is_released_after_30_days_and_finance_alerted(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = offline_input(invoice.company_id, [invoice.id or 0], "cheque")
    fakes = PartnerFakes()
    async with worker_with_fakes(time_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_confirmation")
        started = await time_env.get_current_time()
        await time_env.sleep(timedelta(days=29))
        assert status_of(db, invoice) == "in_payment"
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, invoice) == "unpaid"
    alerts = [at for kind, at in fakes.mails if kind == "offline_unconfirmed"]
    assert len(alerts) == 1 and alerts[0] - started >= timedelta(days=30, seconds=-1)
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None and payment.status == "expired"
