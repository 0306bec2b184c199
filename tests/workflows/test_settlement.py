"""What follows a settlement: the confirmation e-mail and the emitters' notices go out side by side,
and a notice says when the payment was settled.

Before, the notices waited behind the e-mail: an SMTP outage (a day of retries) held "paid" back
from the emitters, and the notice's ``paid_at`` was the time the notice left, not the payment's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.emitters import EmitterNoticeInput
from activities.ledger import mark_awaiting_partner
from activities.mail import EmailInput
from portnet.models import Invoice, Payment
from portnet.protocols import emitter as emitter_protocol
from tests.support.fakes import CmiBank
from tests.support.workers import eventually, payment_input, start, wait_status, worker_with_fakes
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult


async def test_an_smtp_outage_does_not_hold_back_the_emitters_notice(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice(emitter_code="611AGEN001")  # ANP: settled by its acknowledgement
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    smtp_back = asyncio.Event()
    notices: list[EmitterNoticeInput] = []
    mails: list[str] = []

    @activity.defn(name="send_payment_email")
    async def send_payment_email(mail: EmailInput) -> None:
        await smtp_back.wait()  # the mail server does not answer
        mails.append(mail.payment_id)

    @activity.defn(name="send_settlement_notice")
    def send_settlement_notice(notice: EmitterNoticeInput) -> str:
        notices.append(notice)
        sent = emitter_protocol.notice_id(notice.payment_id, notice.emitter_code)
        mark_awaiting_partner(notice.payment_id, notice.emitter_code, sent)
        return sent

    fakes: list[Callable[..., Any]] = [send_payment_email, send_settlement_notice, *CmiBank().activities()]
    async with worker_with_fakes(time_env.client, fakes) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        approval = CmiResult(
            callback_id=3, approved=True, proc_return_code="00", trans_id="T-SIDE", amount="120.00"
        )
        assert (await handle.execute_update(PaymentWorkflow.cmi_result, approval)).answer == "ACTION=POSTAUTH"

        async def notified() -> list[EmitterNoticeInput] | None:
            return notices or None

        await eventually(notified)  # the notice leaves while the e-mail still waits for SMTP
        assert [n.emitter_code for n in notices] == ["611AGEN001"] and mails == []
        smtp_back.set()
        await handle.result()
    assert mails == [inp.payment_id]
    db.expire_all()
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None and payment.paid_at is not None
    assert datetime.fromisoformat(notices[0].paid_at).replace(tzinfo=None) == payment.paid_at
