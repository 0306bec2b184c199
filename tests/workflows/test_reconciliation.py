"""Reconciliation on the dev server: each kind of lost outcome found and settled by one run, nothing
new found by the next, and the Schedule that starts the runs.

The partners are the sandboxes on their own server (a Fatourati token paid, an Amanpay cash code paid
at Tashilat), their callbacks sent to a closed port so that only reconciliation can learn of the
money; the ledger states are written as a crashed portal or worker would have left them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities import cmi_card as cmi_card_adapter
from activities.amanpay import AmanpayOrder, AmanpayOrderInput
from activities.cmi_card import AUTHORISED
from portnet.db import get_engine
from portnet.models import (
    Invoice,
    InvoiceHold,
    PartnerCallback,
    Payment,
    PaymentChannelData,
    PaymentInvoice,
    ReconciliationFinding,
    ReconciliationRun,
    UnappliedPayment,
    utcnow,
)
from portnet.protocols import cmi_api
from portnet.protocols import fatourati as fatourati_protocol
from portnet.schedules import RECONCILIATION_SCHEDULE_ID, ensure_schedules
from portnet.settings import get_settings
from portnet.unapplied import OTHER_AMOUNT_RELEASE
from tests.conftest import reset_caches
from tests.support.cmi_callbacks import card_callback
from tests.support.fakes import CmiBank, PartnerFakes
from tests.support.sandbox import amanpay_order, open_session, token_request
from tests.support.workers import (
    activity_name,
    amanpay_input,
    eventually,
    fatourati_input,
    payment_input,
    running_worker,
    start,
    wait_status,
    worker_with_fakes,
)
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationReport, ReconciliationWorkflow

NOWHERE = "http://127.0.0.1:9/callback"  # a closed port: the partner's callback never reaches us


def one_item(body: dict[str, object]) -> dict[str, object]:
    """The token request of one invoice, its callback sent nowhere."""
    return {**body, "items": [{"ref": "00000001", "amount": body["amount"]}], "callbackUrl": NOWHERE}


async def reconcile(client: Client, queue: str) -> ReconciliationReport:
    return await client.execute_workflow(
        ReconciliationWorkflow.run, id=f"reconciliation-test-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


def findings_of(db: Session, payment_id: str) -> list[ReconciliationFinding]:
    db.expire_all()
    return list(
        db.exec(select(ReconciliationFinding).where(ReconciliationFinding.payment_id == payment_id)).all()
    )


def closed_attempt(
    db: Session, invoice: Invoice, channel: str, status: str = "expired", hold: bool = False
) -> Payment:
    """An attempt as its workflow left it (that workflow long gone from Temporal)."""
    payment_id = "PN" + uuid.uuid4().hex[:12].upper()
    long_ago = utcnow() - timedelta(hours=4)
    payment = Payment(
        id=payment_id,
        workflow_id=f"payment-{payment_id}",
        channel=channel,
        amount=invoice.amount_ttc,
        status=status,
        company_id=invoice.company_id,
        invoice_numbers=invoice.number,
        created_at=long_ago,
        updated_at=utcnow() - timedelta(hours=1),
    )
    db.add(payment)
    db.flush()
    db.add(PaymentInvoice(payment_id=payment_id, invoice_id=invoice.id or 0, amount_ttc=invoice.amount_ttc))
    if hold:
        db.add(InvoiceHold(invoice_id=invoice.id or 0, payment_id=payment_id, previous_status=invoice.status))
        invoice.status = "in_payment"
        db.add(invoice)
    db.commit()
    return payment


@pytest.mark.parametrize("amount", ["120.00", "150.00"])
async def test_expired_fatourati_reference_the_sandbox_says_paid_becomes_unapplied_money(
    dev_env: WorkflowEnvironment,
    sandbox_server: str,
    make_invoice: Callable[..., Invoice],
    db: Session,
    amount: str,
) -> None:
    """Paid at CMI after the attempt closed; 150.00 is another amount than the attempt's 120.00."""
    settings = get_settings()
    invoice = make_invoice(ht="100.00", tva="20.00")
    payment = closed_attempt(db, invoice, "cmi_fatourati")
    async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox/fatourati", timeout=30) as partner:
        body = token_request(settings, payment.id, datetime.now(UTC) + timedelta(hours=1), amount=amount)
        token = (await partner.post("/api/tokens", json=one_item(body))).json()
        db.add(PaymentChannelData(payment_id=payment.id, partner_reference=token["tokenRef"]))
        db.commit()
        paid = (
            await partner.post(
                "/payments", json={"reference": token["tokenRef"], "amount": amount, "channel": "cih"}
            )
        ).json()
    assert paid["result"] == "paid"
    async with running_worker(dev_env.client) as queue:
        report = await reconcile(dev_env.client, queue)
        again = await reconcile(dev_env.client, queue)
    assert "expired_attempt:unapplied" in report.outcomes
    money = db.exec(
        select(UnappliedPayment).where(UnappliedPayment.transaction_number == paid["transaction_number"])
    ).one()
    assert money.amount == Decimal(amount) and money.payment_id == payment.id
    assert "réconciliation" in money.reason and money.partner_reference == token["tokenRef"]
    differs = money.reason.startswith("Montant différent de la demande : attendu 120,00 MAD, reçu 150,00 MAD")
    assert differs == (amount != "120.00"), money.reason
    [finding] = findings_of(db, payment.id)
    assert (finding.kind, finding.outcome, finding.unapplied_id) == ("expired_attempt", "unapplied", money.id)
    assert finding.partner == "fatourati" and finding.amount == Decimal(amount)
    assert finding.run_id == report.run_id
    # The second run finds nothing new for it: one finding, one unapplied row.
    assert again.run_id != report.run_id and len(findings_of(db, payment.id)) == 1
    assert len(db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment.id)).all()) == 1


async def test_expired_fatourati_reference_unpaid_at_cmi_is_checked_once(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    settings = get_settings()
    invoice = make_invoice(ht="50.00", tva="10.00")
    payment = closed_attempt(db, invoice, "cmi_fatourati")
    async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox/fatourati", timeout=30) as partner:
        body = token_request(settings, payment.id, datetime.now(UTC) + timedelta(hours=1), amount="60.00")
        token = (await partner.post("/api/tokens", json=one_item(body))).json()
    db.add(PaymentChannelData(payment_id=payment.id, partner_reference=token["tokenRef"]))
    db.commit()
    async with running_worker(dev_env.client) as queue:
        await reconcile(dev_env.client, queue)
        await reconcile(dev_env.client, queue)
    [finding] = findings_of(db, payment.id)
    assert (finding.kind, finding.outcome) == ("expired_attempt", "unpaid_at_partner")
    assert db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment.id)).first() is None


async def test_amanpay_code_paid_after_the_attempt_expired_becomes_unapplied_money(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    settings = get_settings()
    invoice = make_invoice(ht="200.00", tva="40.00")
    payment = closed_attempt(db, invoice, "amanpay_code")
    async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox", timeout=30) as partner:
        order = (
            await amanpay_order(partner, settings, payment.id, amount="240.00", notify_url=NOWHERE)
        ).json()
        cash = (
            await partner.post("/tashilat/payments", json={"code": order["code"], "amount": "240.00"})
        ).json()
    assert cash["result"] == "paid"
    async with running_worker(dev_env.client) as queue:
        await reconcile(dev_env.client, queue)
        await reconcile(dev_env.client, queue)
    money = db.exec(
        select(UnappliedPayment).where(
            UnappliedPayment.transaction_number == f"amanpay:{cash['transaction_id']}"
        )
    ).one()
    assert money.amount == Decimal("240.00") and money.payment_id == payment.id and money.partner == "amanpay"
    assert money.channel == "amanpay_code" and "réconciliation" in money.reason
    [finding] = findings_of(db, payment.id)
    assert (finding.kind, finding.outcome, finding.partner) == ("expired_attempt", "unapplied", "amanpay")


async def test_invoices_held_by_a_closed_workflow_are_released_once(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    payment = closed_attempt(db, invoice, "cmi_card", status="awaiting_payer", hold=True)
    approved_invoice = make_invoice()
    approved = closed_attempt(db, approved_invoice, "cmi_card", status="awaiting_payer", hold=True)
    db.add(PartnerCallback(partner="cmi", payment_id=approved.id, verdict="accepted", payload="{}"))
    db.commit()
    async with running_worker(dev_env.client) as queue:
        report = await reconcile(dev_env.client, queue)
        again = await reconcile(dev_env.client, queue)
    db.expire_all()
    assert db.get(Invoice, invoice.id).status == "unpaid"  # type: ignore[union-attr]
    assert db.exec(select(InvoiceHold).where(InvoiceHold.payment_id == payment.id)).first() is None
    assert db.get(Payment, payment.id).status == "expired"  # type: ignore[union-attr]
    # CMI was asked first (ORDERHISTORY: it knows no payment), then the invoices were given back.
    assert {(f.kind, f.outcome) for f in findings_of(db, payment.id)} == {
        ("expired_attempt", "unpaid_at_partner"),
        ("orphan_hold", "released"),
    }
    # An approval was accepted for the other one: no release, finance decides.
    assert db.get(Invoice, approved_invoice.id).status == "in_payment"  # type: ignore[union-attr]
    assert ("orphan_hold", "left_for_finance") in {(f.kind, f.outcome) for f in findings_of(db, approved.id)}
    assert "orphan_hold:released" in report.outcomes
    assert not {o for o in again.outcomes if o.startswith("orphan_hold")}


def stuck_fatourati_callback(
    db: Session, payment_id: str, reference: str, amount: str, txn: str, verdict: str = "processing"
) -> PartnerCallback:
    """A genuine callback stored, claimed, and never answered (the portal died or Temporal was down)."""
    settings = get_settings()
    fields: dict[str, object] = {
        "tokenRef": reference,
        "orderId": payment_id,
        "totalAmount": amount,
        "currency": "504",
        "transactionDate": datetime.now(UTC).isoformat(),
        "transactionNumber": txn,
        "channel": "cih",
        "operator": "CIH Bank",
        "decisionCode": "0",
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
    }
    raw = json.dumps(
        fatourati_protocol.signed(fields, fatourati_protocol.CALLBACK, settings.fatourati_api_key)
    )
    row = PartnerCallback(
        partner="fatourati",
        payment_id=payment_id,
        dedupe_key=f"fatourati:{txn}:0",
        verdict=verdict,
        payload="{}",
        raw_body=raw.encode(),
        received_at=utcnow() - timedelta(minutes=10),
    )
    db.add(row)
    db.commit()
    db.refresh(row)
    return row


async def test_stuck_callback_is_delivered_to_its_live_workflow_which_settles(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice(ht="100.00", tva="20.00")
    inp = fatourati_input(invoice.company_id, [invoice.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(dev_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(dev_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.fields is not None
        reference = view.next_action.fields["reference"]
        row = stuck_fatourati_callback(
            db, inp.payment_id, reference, "120.00", "FTR-STUCK-" + uuid.uuid4().hex[:6]
        )
        report = await reconcile(dev_env.client, queue)
        assert "stuck_callback:delivered" in report.outcomes
        result = await handle.result()
        again = await reconcile(dev_env.client, queue)
    assert result.status == "succeeded"
    db.expire_all()
    stored = db.get(PartnerCallback, row.id)
    assert stored is not None and stored.verdict == "accepted"
    answer = json.loads(stored.answer or "{}")
    assert answer["status"] == "ACCEPTED" and answer["receiptNumber"] == f"REC-{inp.payment_id}"
    [finding] = findings_of(db, inp.payment_id)
    assert (finding.kind, finding.outcome, finding.callback_id) == ("stuck_callback", "delivered", row.id)
    assert not [o for o in again.outcomes if o.startswith("stuck_callback")]


async def test_stuck_callback_of_another_amount_is_unapplied_money_and_the_attempt_releases(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """CMI collected another amount than the reference's: kept for finance with the reason, never
    taken by the attempt, which gives its invoices back at once (the reference is spent)."""
    invoice = make_invoice(ht="100.00", tva="20.00")
    inp = fatourati_input(invoice.company_id, [invoice.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(dev_env.client, fakes.fatourati_and_mail()) as queue:
        handle = await start(dev_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.fields is not None
        reference = view.next_action.fields["reference"]
        other = "FTR-OTHER-" + uuid.uuid4().hex[:6]
        row = stuck_fatourati_callback(db, inp.payment_id, reference, "100.00", other)
        report = await reconcile(dev_env.client, queue)
        assert "stuck_callback:unapplied" in report.outcomes
        result = await handle.result()
    assert result.status == "cancelled" and result.transaction_id is None
    assert result.error == OTHER_AMOUNT_RELEASE
    db.expire_all()
    stored = db.get(PartnerCallback, row.id)
    assert stored is not None and stored.verdict == "unapplied"
    money = db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == other)).one()
    assert json.loads(stored.answer or "{}")["receiptNumber"] == f"ENC-{money.id:08d}"
    assert money.amount == Decimal("100.00") and money.payment_id == inp.payment_id
    assert money.reason.startswith("Montant différent de la demande : attendu 120,00 MAD, reçu 100,00 MAD")
    released = db.get(Invoice, invoice.id)
    assert released is not None and released.status != "paid"
    assert db.exec(select(InvoiceHold).where(InvoiceHold.payment_id == inp.payment_id)).all() == []


async def test_stuck_callback_of_a_closed_attempt_becomes_unapplied_money(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice(ht="10.00", tva="2.00")
    payment = closed_attempt(db, invoice, "cmi_fatourati")
    reference = "1089" + str(uuid.uuid4().int)[:9]
    db.add(PaymentChannelData(payment_id=payment.id, partner_reference=reference))
    db.commit()
    txn = "FTR-LOST-" + uuid.uuid4().hex[:6]
    row = stuck_fatourati_callback(db, payment.id, reference, "12.00", txn, verdict="temporal_unavailable")
    async with running_worker(dev_env.client) as queue:
        await reconcile(dev_env.client, queue)
    db.expire_all()
    stored = db.get(PartnerCallback, row.id)
    assert stored is not None and stored.verdict == "unapplied"
    money = db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == txn)).one()
    assert json.loads(stored.answer or "{}")["receiptNumber"] == f"ENC-{money.id:08d}"
    assert money.amount == Decimal("12.00") and money.callback_id == row.id
    kinds = {(f.kind, f.outcome) for f in findings_of(db, payment.id)}
    assert ("stuck_callback", "unapplied") in kinds


async def test_schedule_is_created_idempotently_and_starts_a_run(
    dev_env: WorkflowEnvironment, database_url: str
) -> None:
    settings = get_settings()
    async with running_worker(dev_env.client) as queue:
        await ensure_schedules(dev_env.client, settings, task_queue=queue)
        await ensure_schedules(dev_env.client, settings, task_queue=queue)  # an update, not an error
        handle = dev_env.client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)
        try:
            described = await handle.describe()
            assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            [interval] = described.schedule.spec.intervals
            assert interval.every == timedelta(seconds=settings.reconciliation_interval_seconds)
            before = utcnow()
            await handle.trigger()

            async def finished_run() -> ReconciliationRun | None:
                with Session(get_engine()) as session:
                    return session.exec(
                        select(ReconciliationRun).where(
                            ReconciliationRun.started_at >= before - timedelta(seconds=1),
                            ReconciliationRun.finished_at.is_not(None),  # type: ignore[union-attr]
                        )
                    ).first()

            assert await eventually(finished_run, timeout=60) is not None
        finally:
            await handle.delete()


async def test_card_attempt_over_with_money_at_cmi_is_unapplied_or_left_to_finance(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """ORDERHISTORY: a captured transaction is money taken (unapplied); an authorisation alone is not."""
    settings = get_settings()
    captured = closed_attempt(db, make_invoice(ht="3000.00", tva="600.00"), "cmi_card")
    authorised = closed_attempt(db, make_invoice(ht="3000.00", tva="600.00"), "cmi_card")
    async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox", timeout=60) as bank:
        for payment in (captured, authorised):
            await open_session(bank, settings, payment.id, CallbackURL=NOWHERE)
            paid = (await bank.post("/cmi/card-payments", json=card(payment.id))).json()
            assert paid["result"] == "approved" and not paid["captured"]
        capture = await bank.post(
            "/cmi/fim/api",
            content=cmi_api.post_auth_request(
                settings.cmi_api_name, settings.cmi_api_password, settings.cmi_client_id, captured.id
            ),
        )
        assert "<ProcReturnCode>00</ProcReturnCode>" in capture.text
    async with running_worker(dev_env.client) as queue:
        await reconcile(dev_env.client, queue)
        await reconcile(dev_env.client, queue)
    [taken] = findings_of(db, captured.id)
    assert (taken.kind, taken.outcome, taken.partner) == ("expired_attempt", "unapplied", "cmi")
    money = db.get(UnappliedPayment, taken.unapplied_id)
    assert money is not None and money.amount == Decimal("3600.00") and money.channel == "cmi_card"
    assert money.transaction_number == taken.partner_transaction and money.payment_id == captured.id
    [held] = findings_of(db, authorised.id)
    assert (held.kind, held.outcome) == ("expired_attempt", "left_for_finance")
    assert (
        db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == authorised.id)).first() is None
    )


def card(oid: str) -> dict[str, str]:
    expiry = f"12/{(datetime.now().year + 3) % 100:02d}"
    return {"oid": oid, "pan": "4000000000000010", "expiry": expiry, "cvv": "000"}


async def test_stuck_card_callback_reaches_its_live_attempt_which_captures_before_settling(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """CMI approved, our answer never left (the portal died): the workflow takes the approval, finds
    the authorisation uncaptured at CMI, captures it (PostAuth), then settles."""
    invoice = make_invoice(ht="100.00", tva="20.00")
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    bank = CmiBank(state=AUTHORISED)
    fakes = PartnerFakes()
    async with worker_with_fakes(dev_env.client, bank.activities() + fakes.silent_emitters()) as queue:
        handle = await start(dev_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        row = PartnerCallback(
            partner="cmi",
            payment_id=inp.payment_id,
            dedupe_key=f"cmi:{inp.payment_id}:T-STUCK:00",
            verdict="processing",
            payload="{}",
            raw_body=card_callback(inp.payment_id, "T-STUCK"),
            received_at=utcnow() - timedelta(minutes=10),
        )
        db.add(row)
        db.commit()
        db.refresh(row)
        report = await reconcile(dev_env.client, queue)
        result = await handle.result()
    assert "stuck_callback:delivered" in report.outcomes
    assert result.status == "succeeded" and bank.captures == ["T-STUCK"]
    db.expire_all()
    stored = db.get(PartnerCallback, row.id)
    assert stored is not None and (stored.verdict, stored.answer) == ("accepted", "ACTION=POSTAUTH")


async def test_partner_down_does_not_keep_a_closed_attempts_invoices_held(
    dev_env: WorkflowEnvironment,
    make_invoice: Callable[..., Invoice],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Amanpay does not answer: the invoices are released all the same, the pass counts an error,
    and the partner is asked again by the next pass (no finding closes the question)."""
    invoice = make_invoice()
    payment = closed_attempt(db, invoice, "amanpay_amanty", status="awaiting_payer", hold=True)
    monkeypatch.setenv("AMANPAY_BASE_URL", "http://127.0.0.1:9/sandbox/amanpay")
    reset_caches()
    try:
        async with running_worker(dev_env.client) as queue:
            report = await reconcile(dev_env.client, queue)
    finally:
        monkeypatch.undo()
        reset_caches()
    assert report.errors >= 1
    db.expire_all()
    assert db.get(Invoice, invoice.id).status == "unpaid"  # type: ignore[union-attr]
    assert {(f.kind, f.outcome) for f in findings_of(db, payment.id)} == {("orphan_hold", "released")}


async def test_a_live_attempt_whose_notice_never_came_settles_on_the_partners_word(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """PSync: Amanpay took the cash but its notification never reached us. The attempt still waits
    within its 72 hours; reconciliation asks Amanpay and hands its "paid" to the attempt, which settles."""
    settings = get_settings()
    invoice = make_invoice(ht="200.00", tva="40.00")
    inp = amanpay_input(invoice, channel="amanpay_code")
    fakes = PartnerFakes()

    @activity.defn(name="create_order")
    async def create_order(order: AmanpayOrderInput) -> AmanpayOrder:
        async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox", timeout=30) as partner:
            created = (
                await amanpay_order(
                    partner, settings, order.payment_id, amount=order.amount, notify_url=NOWHERE
                )
            ).json()
        return AmanpayOrder(ok=True, code=created["code"], expires_at=created["expires_at"])

    activities = [a for a in fakes.amanpay() if activity_name(a) != "create_order"]
    async with worker_with_fakes(
        dev_env.client, [*activities, *fakes.silent_emitters(), create_order]
    ) as queue:
        handle = await start(dev_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.next_action is not None and view.next_action.code
        async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox", timeout=30) as partner:
            cash = (
                await partner.post(
                    "/tashilat/payments", json={"code": view.next_action.code, "amount": "240.00"}
                )
            ).json()
        assert cash["result"] == "paid"
        before = await reconcile(dev_env.client, queue)  # waiting less than 2 minutes: not asked yet
        assert not [o for o in before.outcomes if o.endswith("delivered")]
        db.execute(  # the attempt has been waiting for a while now
            update(InvoiceHold)
            .where(col(InvoiceHold.payment_id) == inp.payment_id)
            .values(created_at=utcnow() - timedelta(minutes=5))
        )
        db.commit()
        report = await reconcile(dev_env.client, queue)
        assert "expired_attempt:delivered" in report.outcomes
        result = await handle.result()
    assert result.status == "succeeded"
    assert db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == inp.payment_id)).all() == []


async def test_a_live_card_attempt_whose_callback_never_came_captures_on_cmis_word(
    dev_env: WorkflowEnvironment, sandbox_server: str, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """PSync for cards: CMI approved the card but its callback never reached us (dropped), so CMI
    holds an authorisation only. Once the attempt has waited a while, reconciliation reads the order
    history and hands the approval to the attempt, which captures it through CMI's API, then settles."""
    settings = get_settings()
    invoice = make_invoice(ht="3000.00", tva="600.00")
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    fakes = PartnerFakes()
    async with worker_with_fakes(dev_env.client, fakes.silent_emitters()) as queue:
        handle = await start(dev_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        async with httpx.AsyncClient(base_url=f"{sandbox_server}/sandbox", timeout=60) as bank:
            await open_session(bank, settings, inp.payment_id, CallbackURL=NOWHERE)
            paid = (await bank.post("/cmi/card-payments", json=card(inp.payment_id))).json()
        assert paid["result"] == "approved" and not paid["captured"]
        before = await reconcile(dev_env.client, queue)  # waiting less than 2 minutes: not asked yet
        assert not [o for o in before.outcomes if o.endswith("delivered")]
        assert (await handle.query(PaymentWorkflow.state)).status == "awaiting_payer"  # type: ignore[union-attr]
        db.execute(
            update(InvoiceHold)
            .where(col(InvoiceHold.payment_id) == inp.payment_id)
            .values(created_at=utcnow() - timedelta(minutes=5))
        )
        db.commit()
        report = await reconcile(dev_env.client, queue)
        assert "expired_attempt:delivered" in report.outcomes
        result = await handle.result()
    assert result.status == "succeeded" and result.transaction_id == paid["trans_id"]
    history = await cmi_card_adapter.order_history(inp.payment_id)
    assert history.state_of(paid["trans_id"]) == cmi_api.CAPTURED
    db.expire_all()
    assert db.get(Invoice, invoice.id).status in ("payment_confirmed", "awaiting_partner", "paid")  # type: ignore[union-attr]
    assert db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == inp.payment_id)).all() == []


async def test_stuck_emitter_acknowledgement_of_a_closed_payment_marks_its_invoice_paid(
    dev_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """An emitter's acknowledgement kept while Temporal was down, its payment's workflow closed since:
    the reconciliation applies it through the ledger (the invoice is paid), as the route would."""
    invoice = make_invoice()
    payment = closed_attempt(db, invoice, "cmi_card", status="succeeded")
    invoice.status = "awaiting_partner"
    db.add(invoice)
    db.commit()
    emitter = "6110DOO116"  # the test invoices' emitter
    body = {
        "notice_id": f"{payment.id}-{emitter}",
        "emitter_code": emitter,
        "emitter_ack_id": f"{emitter}-ACK-0A1B2C3D4E5F",
        "acknowledged_at": datetime.now(UTC).isoformat(),
    }
    row = PartnerCallback(
        partner="emitter",
        payment_id=payment.id,
        dedupe_key=f"emitter:{payment.id}-{emitter}",
        verdict="temporal_unavailable",
        payload="{}",
        raw_body=json.dumps(body).encode(),
        received_at=utcnow() - timedelta(minutes=10),
    )
    db.add(row)
    db.commit()
    db.refresh(row)
    async with running_worker(dev_env.client) as queue:
        report = await reconcile(dev_env.client, queue)
    assert "stuck_callback:delivered" in report.outcomes
    db.expire_all()
    assert db.get(Invoice, invoice.id).status == "paid"  # type: ignore[union-attr]
    stored = db.get(PartnerCallback, row.id)
    assert stored is not None and stored.verdict == "accepted_late"
