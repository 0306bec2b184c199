"""Issue 4 on the time-skipping server: Fatourati's 3-hour reference, its reminder, the cheque wait.

The partner and mail activities are replaced by recording fakes (same activity names), so these
tests are about the workflow's time rules; the HTTP side is in tests/integration/test_fatourati.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from portnet.db import session_scope
from portnet.models import Company, Invoice, InvoiceMessage, Payment, PaymentChannelData
from tests.helpers import payment_input, start, wait_status
from worker import ACTIVITIES, WORKFLOWS
from workflows.payment import PaymentWorkflow
from workflows.types import (
    EmailInput,
    FatouratiResult,
    FinanceDecision,
    PaymentInput,
    ReferenceEmailInput,
    TokenInput,
)

HOURS_3 = 3 * 3600


@dataclass
class Fakes:
    mails: list[tuple[str, datetime]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., object]]:
        fakes = self

        @activity.defn(name="create_token")
        async def create_token(inp: TokenInput) -> object:
            from workflows.types import FatouratiToken

            reference = "1089" + str(uuid.uuid4().int)[:9]
            with session_scope() as session:
                session.add(
                    PaymentChannelData(
                        payment_id=inp.payment_id,
                        partner_reference=reference,
                        expires_at=datetime.fromisoformat(inp.expires_at).replace(tzinfo=None),
                    )
                )
            return FatouratiToken(reference, inp.expires_at)

        @activity.defn(name="cancel_token")
        async def cancel_token(payment_id: str) -> str:
            fakes.cancelled.append(payment_id)
            return "CANCELLED"

        @activity.defn(name="send_channel_email")
        async def send_channel_email(inp: ReferenceEmailInput) -> None:
            fakes.mails.append((inp.kind, activity.info().scheduled_time))

        @activity.defn(name="send_payment_email")
        async def send_payment_email(inp: EmailInput) -> None:
            fakes.mails.append(("payment_confirmed", activity.info().scheduled_time))

        replaced = {"create_token", "cancel_token", "send_channel_email", "send_payment_email"}
        kept = [a for a in ACTIVITIES if getattr(a, "__temporal_activity_definition").name not in replaced]
        return [*kept, create_token, cancel_token, send_channel_email, send_payment_email]


@asynccontextmanager
async def fake_worker(client: Client) -> AsyncIterator[tuple[str, Fakes]]:
    fakes = Fakes()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=fakes.activities(),
            activity_executor=executor,
        ):
            yield queue, fakes


def fatourati_input(company_id: int, invoice_ids: list[int]) -> PaymentInput:
    inp = payment_input(company_id, invoice_ids, deadline=HOURS_3)
    inp.channel = "cmi_fatourati"
    inp.reminder_before_seconds = 1800
    return inp


def paid(txn: str, amount: str, code: str = "0") -> FatouratiResult:
    return FatouratiResult(
        callback_id=1, transaction_number=txn, decision_code=code, amount=amount, channel="cih"
    )


def status_of(db: Session, invoice: Invoice) -> str:
    db.expire_all()
    fresh = db.get(Invoice, invoice.id)
    assert fresh is not None
    return fresh.status


async def test_unpaid_reference_gets_a_reminder_then_expires_and_is_cancelled_at_cmi(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a, b = make_invoice(), make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0, b.id or 0])
    async with fake_worker(time_env.client) as (queue, fakes):
        handle = await start(time_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.amount == "240.00" and view.next_action is not None
        assert view.next_action.type == "fatourati_reference"
        assert view.next_action.fields is not None and len(view.next_action.fields["reference"]) == 13
        started = await time_env.get_current_time()
        assert status_of(db, a) == status_of(db, b) == "in_payment"
        result = await handle.result()
    assert result.status == "expired"
    assert fakes.cancelled == [inp.payment_id]
    assert status_of(db, a) == status_of(db, b) == "unpaid"
    kinds = [k for k, _ in fakes.mails]
    assert kinds == ["fatourati_reference", "fatourati_reminder"]
    reminder_at = fakes.mails[1][1]
    assert timedelta(hours=2, minutes=29) <= reminder_at - started <= timedelta(hours=2, minutes=31)


async def test_payment_at_2h59m59s_settles_and_no_reminder_after_payment(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a, b = make_invoice(), make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0, b.id or 0])
    async with fake_worker(time_env.client) as (queue, fakes):
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(hours=2, minutes=59, seconds=59))
        decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR1", "240.00"))
        assert decision.outcome == "accepted" and decision.receipt_number == f"REC-{inp.payment_id}"
        again = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR1", "240.00"))
        assert again.outcome == "duplicate" and again.receipt_number == decision.receipt_number
        other = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR2", "240.00"))
        assert other.outcome == "unapplied"
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == "FTR1"
    assert status_of(db, a) == status_of(db, b) == "paid"
    assert fakes.cancelled == []


async def test_early_payment_means_no_reminder(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    async with fake_worker(time_env.client) as (queue, fakes):
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(minutes=10))
        decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR3", "120.00"))
        assert decision.outcome == "accepted"
        await handle.result()
    assert "fatourati_reminder" not in [k for k, _ in fakes.mails]


async def test_refused_decision_keeps_invoices_held_until_the_deadline(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    async with fake_worker(time_env.client) as (queue, _fakes):
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.fatourati_result, paid("FTR4", "120.00", code="1")
        )
        assert decision.outcome == "refused"
        await time_env.sleep(timedelta(hours=2))
        view = await handle.query(PaymentWorkflow.state)
        assert view is not None and view.status == "awaiting_payer" and view.declines == 1
        assert status_of(db, a) == "in_payment"
        wrong = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR5", "99.00"))
        assert wrong.outcome == "amount_mismatch"
        assert status_of(db, a) == "in_payment"
        result = await handle.result()
    assert result.status == "expired"  # the reference expired; the refusal is in the message log
    assert status_of(db, a) == "unpaid"


async def test_payment_after_the_deadline_in_the_same_breath_is_unapplied(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    a = make_invoice()
    inp = fatourati_input(a.company_id, [a.id or 0])
    async with fake_worker(time_env.client) as (queue, _fakes):
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(hours=3, seconds=1))
        try:
            decision = await handle.execute_update(PaymentWorkflow.fatourati_result, paid("FTR6", "120.00"))
        except (WorkflowUpdateFailedError, RPCError):
            decision = (
                None  # the workflow is already closed: the web layer keeps the money (integration test)
            )
        assert decision is None or decision.outcome == "unapplied"
        result = await handle.result()
    assert result.status == "expired"
    assert status_of(db, a) == "unpaid"


def offline_input(company_id: int, invoice_ids: list[int], channel: str = "bank_transfer") -> PaymentInput:
    inp = payment_input(company_id, invoice_ids, deadline=30 * 24 * 3600)
    inp.channel = channel
    inp.declaration = (
        {"transfer_reference": "VIR-2026-001", "transfer_date": "2026-11-20"}
        if channel == "bank_transfer"
        else {"cheque_number": "1234567", "bank": "CIH Bank"}
    )
    return inp


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
    async with fake_worker(time_env.client) as (queue, _fakes):
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
    async with fake_worker(time_env.client) as (queue, _fakes):
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
    async with fake_worker(time_env.client) as (queue, fakes):
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
