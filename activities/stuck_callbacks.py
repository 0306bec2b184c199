"""Partner calls the workflow never heard of, delivered again from their stored raw body.

A genuine partner call is stored before it is judged (``partner_callback``: raw body, its hash) and
becomes ``processing`` only after its fields and signature passed. One left ``processing`` (the
portal died mid-way) or ``temporal_unavailable`` (Temporal was down) and never taken over by a
redelivery is read again here from its raw body, field by field (and its signature when the body
carries it: Fatourati, CMI), then given to the attempt's workflow as the route would have: the same
Update, the same verdict and answer written on the row, so that a later redelivery gets that answer.
A paying call the attempt no longer takes (closed, expired) or whose amount is not the attempt's
becomes unapplied money with the reason.
A CMI card callback goes to its live workflow, which confirms the capture with CMI before settling
(ORDERHISTORY, PostAuth); for a closed card attempt the money question is CMI's order history, asked
by the attempt's own check (activities/reconciliation.py): the call itself is recorded ``late``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.emitters import apply_late_acknowledgement
from activities.receipts import receipt_number
from portnet import reconciliation as findings
from portnet import unapplied as unapplied_money
from portnet.db import session_scope
from portnet.models import PartnerCallback, Payment, PaymentChannelData
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import emitter as emitter_protocol
from portnet.protocols import fatourati as fatourati_protocol
from portnet.protocols.fields import MessageRejected, strict_form, strict_json_object
from portnet.settings import get_settings
from portnet.statuses import PaymentStatus

STUCK_VERDICTS = ("processing", "temporal_unavailable")
# What a stuck call became: (verdict, answer, finding outcome, amount, unapplied money id).
Judged = tuple[str, str, str, Decimal | None, int | None]


@dataclass
class CallbackCheck:
    run_id: str
    callback_id: int


class _Closed(Exception):
    """The attempt's workflow is over: the call can no longer be decided by it."""


def _load(callback_id: int) -> tuple[PartnerCallback | None, Payment | None, PaymentChannelData | None]:
    with session_scope() as session:
        row = session.get(PartnerCallback, callback_id)
        if row is None or row.verdict not in STUCK_VERDICTS or row.dedupe_key is None:
            return None, None, None
        payment = session.get(Payment, row.payment_id) if row.payment_id else None
        data = session.get(PaymentChannelData, row.payment_id) if row.payment_id else None
        session.expunge_all()
        return row, payment, data


def _finish(callback_id: int, verdict: str, answer: str) -> None:
    """The verdict and answer the route would have written; only while the row still holds the event."""
    with session_scope() as session:
        session.execute(
            update(PartnerCallback)
            .where(
                col(PartnerCallback.id) == callback_id,
                col(PartnerCallback.verdict).in_(STUCK_VERDICTS),
                col(PartnerCallback.dedupe_key).is_not(None),
            )
            .values(verdict=verdict, answer=answer)
        )


async def _update(workflow_id: str, name: str, arg: dict[str, Any]) -> Any:
    handle = activity.client().get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(name, arg)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise _Closed from None
        raise


async def _release_early(payment: Payment) -> None:
    """As the routes do (web/callback_inbox.release_early): money of another amount was kept for
    finance, the live attempt gives its invoices back; if it does not hear, its deadline does."""
    if PaymentStatus(payment.status).is_final:
        return
    handle = activity.client().get_workflow_handle(payment.workflow_id)
    try:
        await handle.signal("cancel", unapplied_money.OTHER_AMOUNT_RELEASE)
    except RPCError as err:
        activity.logger.info("attempt %s not told to release early: %s", payment.id, err.status)


async def _keep(row: PartnerCallback, payment: Payment | None, **money: Any) -> int:
    return await asyncio.to_thread(
        lambda: findings.keep_unapplied(
            callback_id=row.id,
            payment_id=payment.id if payment else None,
            channel=payment.channel if payment else None,
            **money,
        )
    )


async def _fatourati(
    row: PartnerCallback, payment: Payment | None, data: PaymentChannelData | None
) -> Judged:
    """(verdict, answer, outcome, amount, unapplied id) for a stuck Fatourati callback."""
    s = get_settings()
    fields = strict_json_object(row.raw_body or b"")
    callback = fatourati_protocol.read_callback(fields, s.fatourati_merchant_code, s.fatourati_store_id)
    if not fatourati_protocol.verify(fields, fatourati_protocol.CALLBACK, s.fatourati_api_key):
        raise MessageRejected("signature", "does not verify")

    def answer(status: str, receipt: str | None) -> str:
        return json.dumps(fatourati_protocol.callback_answer(callback, status, receipt, s.fatourati_api_key))

    async def unapplied(reason: str) -> Judged:
        kept = await _keep(
            row,
            payment,
            partner="fatourati",
            transaction_number=callback.transaction_number,
            amount=callback.total_amount,
            reason=reason,
            partner_reference=callback.token_ref,
        )
        return (
            "unapplied",
            answer("RECEIVED_UNAPPLIED", f"ENC-{kept:08d}"),
            "unapplied",
            callback.total_amount,
            kept,
        )

    bound = payment is not None and data is not None and data.partner_reference == callback.token_ref
    if not bound or payment is None:
        if not callback.paid:
            return "unknown_order", answer("RECORDED", None), "recorded", None, None
        return await unapplied("Référence Fatourati inconnue pour cette commande (notification réconciliée)")

    async def another_amount(attempt: Payment) -> Judged:
        """CMI collected another amount than the reference's: finance's money, as the route keeps it."""
        if not callback.paid:
            return "declined", answer("RECORDED", None), "recorded", None, None
        reason = unapplied_money.amount_differs(attempt.amount, callback.total_amount)
        judged = await unapplied(f"{reason} (notification réconciliée)")
        await _release_early(attempt)
        return judged

    if callback.total_amount != payment.amount:
        return await another_amount(payment)
    result = {
        "callback_id": row.id,
        "transaction_number": callback.transaction_number,
        "decision_code": callback.decision_code,
        "amount": f"{callback.total_amount:.2f}",
        "channel": callback.channel,
        "transaction_date": callback.transaction_date or None,
    }
    try:
        decision = await _update(payment.workflow_id, "fatourati_result", result)
        outcome = decision.get("outcome") if isinstance(decision, dict) else None
    except _Closed:
        outcome, decision = "unapplied", {}
    if outcome in ("accepted", "duplicate"):
        verdict = "accepted" if outcome == "accepted" else "replay"
        return (
            verdict,
            answer("ACCEPTED", decision.get("receipt_number")),
            "delivered",
            callback.total_amount,
            None,
        )
    if outcome == "refused":
        return "declined", answer("RECORDED", None), "delivered", callback.total_amount, None
    if outcome == "amount_mismatch":
        return await another_amount(payment)
    if not callback.paid:
        return "late", answer("RECORDED", None), "recorded", None, None
    if await asyncio.to_thread(unapplied_money.settled_by, payment.id, callback.transaction_number):
        # The workflow closed after settling on this very transaction: answered from the ledger.
        receipt = receipt_number(payment.id)
        return "replay", answer("ACCEPTED", receipt), "delivered", callback.total_amount, None
    return await unapplied(
        "Paiement reçu après l'échéance de la référence "
        f"(notification réconciliée, tentative {payment.status})"
    )


async def _amanpay(row: PartnerCallback, payment: Payment | None) -> Judged:
    """A stuck Amanpay notification: its signature (a header) was verified before it was stored as
    ``processing``; its fields are read again here."""
    notice = amanpay_protocol.read_notification(
        strict_json_object(row.raw_body or b""), get_settings().amanpay_merchant_id
    )

    async def unapplied(reason: str) -> Judged:
        kept = await _keep(
            row,
            payment,
            partner="amanpay",
            transaction_number=f"amanpay:{notice.transaction_id or notice.event_id}",
            amount=notice.amount,
            reason=reason,
        )
        return "unapplied", "200", "unapplied", notice.amount, kept

    if payment is None:
        if notice.status != "paid":
            return "unknown_order", "404", "recorded", None, None
        return await unapplied("Paiement notifié pour une commande inconnue (notification réconciliée)")
    if notice.amount != payment.amount:  # Amanpay collected another amount: finance's money
        if notice.status != "paid":
            return "declined", "200", "recorded", None, None
        reason = unapplied_money.amount_differs(payment.amount, notice.amount)
        judged = await unapplied(f"{reason} (notification réconciliée)")
        await _release_early(payment)
        return judged
    arg = {
        "callback_id": row.id,
        "event_id": notice.event_id,
        "status": notice.status,
        "amount": notice.amount_text,
        "transaction_id": notice.transaction_id,
        "channel": notice.channel,
        "reason": notice.reason,
    }
    try:
        decision = await _update(payment.workflow_id, "amanpay_result", arg)
        accepted = isinstance(decision, dict) and bool(decision.get("accepted"))
    except _Closed:
        accepted = False
    except Exception:  # noqa: BLE001 - WorkflowUpdateFailedError: refused by the workflow
        accepted = False
    if accepted:
        return "accepted", "200", "delivered", notice.amount, None
    settling = f"amanpay:{notice.transaction_id}"
    if notice.status == "paid" and await asyncio.to_thread(unapplied_money.settled_by, payment.id, settling):
        return "replay", "200", "delivered", notice.amount, None  # the closed attempt's own payment
    if notice.status == "paid":
        return await unapplied(
            "Paiement notifié après l'expiration du code ou la clôture de la tentative "
            "(notification réconciliée)"
        )
    return "late", "200", "recorded", None, None


async def _cmi(row: PartnerCallback, payment: Payment | None) -> Judged:
    """A stuck CMI card callback: every field and the HASH checked again (both are in the body)."""
    s = get_settings()
    fields = strict_form(row.raw_body or b"")
    callback = cmi_protocol.read_callback(fields, s.cmi_client_id)
    if not cmi_protocol.verify_hash(fields, s.cmi_store_key):
        raise MessageRejected("HASH", "does not verify")
    if payment is None or callback.amount != payment.amount:
        return ("unknown_order" if payment is None else "amount_mismatch"), "APPROVED", "recorded", None, None
    result = {
        "callback_id": row.id,
        "approved": callback.approved,
        "proc_return_code": callback.proc_return_code,
        "trans_id": callback.trans_id,
        "amount": callback.amount_text,
        "auth_code": callback.auth_code,
        "host_ref_num": callback.host_ref_num,
        "masked_pan": callback.masked_pan,
        "err_msg": callback.err_msg,
        "transaction_date": callback.transaction_date,
    }
    try:
        decision = await _update(payment.workflow_id, "cmi_result", result)
    except _Closed:
        return "late", "APPROVED", "recorded", callback.amount, None
    except Exception:  # noqa: BLE001 - WorkflowUpdateFailedError: refused by the workflow
        return "rejected", "APPROVED", "recorded", callback.amount, None
    answer = str(decision.get("answer", "APPROVED")) if isinstance(decision, dict) else "APPROVED"
    if answer.startswith("ACTION=POSTAUTH"):
        return "accepted", answer, "delivered", callback.amount, None
    return ("not_captured" if callback.approved else "declined"), answer, "delivered", callback.amount, None


async def _emitter(row: PartnerCallback, payment: Payment | None) -> Judged:
    ack = emitter_protocol.read_ack(strict_json_object(row.raw_body or b""))
    if payment is None:
        return "unknown_order", "404", "recorded", None, None
    signal = {
        "emitter_code": ack.emitter_code,
        "notice_id": ack.notice_id,
        "emitter_ack_id": ack.emitter_ack_id,
        "callback_id": row.id,
    }
    try:
        await (
            activity.client().get_workflow_handle(payment.workflow_id).signal("emitter_acknowledged", signal)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # The workflow is over: the ledger applies the acknowledgement itself, as the route does.
        args = (payment.id, ack.emitter_code, ack.emitter_ack_id)
        if await asyncio.to_thread(apply_late_acknowledgement, *args):
            return "accepted_late", "200", "delivered", None, None
        return "late", "200", "recorded", None, None
    return "accepted", "200", "delivered", None, None


@activity.defn
async def reconcile_callback(check: CallbackCheck) -> str:
    """One stuck partner call: delivered, recorded, or kept as unapplied money; returns the outcome."""
    run_id, callback_id = check.run_id, check.callback_id
    row, payment, data = await asyncio.to_thread(_load, callback_id)
    if row is None:
        return "gone"  # answered or taken over since it was found
    key = f"stuck_callback:{callback_id}"
    try:
        if row.partner == "fatourati":
            verdict, answer, outcome, amount, unapplied = await _fatourati(row, payment, data)
        elif row.partner == "amanpay":
            verdict, answer, outcome, amount, unapplied = await _amanpay(row, payment)
        elif row.partner == "cmi":
            verdict, answer, outcome, amount, unapplied = await _cmi(row, payment)
        elif row.partner == "emitter":
            verdict, answer, outcome, amount, unapplied = await _emitter(row, payment)
        else:
            return "unknown_partner"
    except MessageRejected as rejected:
        verdict, answer, outcome, amount, unapplied = "malformed", "400", "recorded", None, None
        activity.logger.warning("stored callback %s no longer reads: %s", callback_id, rejected)
    await asyncio.to_thread(_finish, callback_id, verdict, answer)
    finding = findings.Finding(
        dedupe_key=key,
        run_id=run_id,
        kind="stuck_callback",
        outcome=outcome,
        payment_id=row.payment_id,
        partner=row.partner,
        amount=amount,
        detail=f"Notification {row.verdict} reprise : {verdict}",
        callback_id=callback_id,
        unapplied_id=unapplied,
    )
    await asyncio.to_thread(findings.record, finding)
    return outcome
