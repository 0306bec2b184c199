"""CMI card: approved, declined, expired, cancelled (payer, operator), refused reservation, emitters."""

from __future__ import annotations

from datetime import timedelta

from activities.cmi_card import AUTHORISED, CAPTURED, NOTHING
from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import USER_NAME, PaymentHandle, Recording
from tests.histories.scenarios.common import Scenario, expect
from tests.histories.world import ANP, ANP_INVOICE, PORTNET_INVOICE, PORTNET_OTHER, LedgerInvoice, Plan
from workflows.payment import PaymentWorkflow
from workflows.types import CmiResult, EmitterAck, PaymentView

# The time a payer spends on CMI's page before the callback comes.
ON_CMI_PAGE = timedelta(minutes=2)


def approval(view: PaymentView, callback_id: int, trans_id: str, received_at: str | None = None) -> CmiResult:
    """CMI's approved callback as web/channels/cmi_card.py turns it into the Update's argument
    (``received_at``: the portal's stamp, Recording.received_now)."""
    return CmiResult(
        callback_id=callback_id,
        approved=True,
        proc_return_code="00",
        trans_id=trans_id,
        amount=view.amount,
        auth_code="614207",
        host_ref_num="263330418822",
        masked_pan="400000***0010",
        err_msg=None,
        transaction_date="20261129 10:42:17",
        received_at=received_at,
    )


def decline(view: PaymentView, callback_id: int, trans_id: str) -> CmiResult:
    return CmiResult(
        callback_id=callback_id,
        approved=False,
        proc_return_code="05",
        trans_id=trans_id,
        amount=view.amount,
        auth_code=None,
        host_ref_num="263330418790",
        masked_pan="545301***6100",
        err_msg="Transaction refusée",
        transaction_date="20261129 10:41:02",
    )


async def _start(
    r: Recording, path: RecordedPath, invoices: list[LedgerInvoice] | None = None, plan: Plan | None = None
) -> tuple[PaymentHandle, PaymentView]:
    invoices = invoices or [PORTNET_INVOICE]
    inp = r.payment_input(path, Channel.CMI_CARD, invoices)
    handle, view = await r.start_payment(inp, invoices, plan)
    expect(view.status == "awaiting_payer", f"card attempt not awaiting the payer: {view}")
    expect(view.next_action is not None and view.next_action.type == "redirect_form", "no CMI form")
    return handle, view


async def approved(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(ON_CMI_PAGE)
    decision = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 101, "26333KXQB04127", await r.received_now())
    )
    expect(decision.answer == "ACTION=POSTAUTH", f"approval not captured: {decision}")
    return handle


async def declined_then_approved(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(ON_CMI_PAGE)
    first = await handle.execute_update(PaymentWorkflow.cmi_result, decline(view, 102, "26333PLMZ00311"))
    expect(first.answer == "APPROVED", f"a decline must not be captured: {first}")
    await r.skip(ON_CMI_PAGE)
    second = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 103, "26333PLNA00312", await r.received_now())
    )
    expect(second.answer == "ACTION=POSTAUTH", f"approval not captured: {second}")
    return handle


async def expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    return handle


async def declined_then_expired(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path)
    await r.skip(ON_CMI_PAGE)
    decision = await handle.execute_update(PaymentWorkflow.cmi_result, decline(view, 104, "26333QRTS00777"))
    expect(decision.answer == "APPROVED", f"a decline must not be captured: {decision}")
    return handle


async def cancelled_by_payer(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    await r.skip(ON_CMI_PAGE)
    await handle.signal(PaymentWorkflow.cancel, f"Annulé par {USER_NAME}")
    return handle


async def cancelled_by_operator(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, _ = await _start(r, path)
    await r.skip(ON_CMI_PAGE)
    await handle.cancel()
    return handle


async def invoice_already_held(r: Recording, path: RecordedPath) -> PaymentHandle:
    invoices = [PORTNET_INVOICE]
    inp = r.payment_input(path, Channel.CMI_CARD, invoices)
    handle, view = await r.start_payment(
        inp, invoices, Plan([i.id for i in invoices], refuse_reservation=True)
    )
    expect(view.status == "failed" and view.error_code == "conflict", f"reservation not refused: {view}")
    return handle


async def emitter_acknowledged(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, [PORTNET_OTHER, ANP_INVOICE])
    await r.skip(ON_CMI_PAGE)
    decision = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 105, "26333ANPX00950", await r.received_now())
    )
    expect(decision.answer == "ACTION=POSTAUTH", f"approval not captured: {decision}")
    await r.world.noticed(view.id)
    # ANP's acknowledgement, as web/api/emitter_acks.emitter_ack signals it.
    code = ANP[0]
    await handle.signal(
        PaymentWorkflow.emitter_acknowledged,
        EmitterAck(
            emitter_code=code,
            notice_id=f"{view.id}-{code}",
            emitter_ack_id="ANP-ACK-2026-08812",
            callback_id=106,
        ),
    )
    return handle


async def emitter_silent(r: Recording, path: RecordedPath) -> PaymentHandle:
    handle, view = await _start(r, path, [ANP_INVOICE])
    await r.skip(ON_CMI_PAGE)
    decision = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 107, "26333ANPY00951", await r.received_now())
    )
    expect(decision.answer == "ACTION=POSTAUTH", f"approval not captured: {decision}")
    await r.world.noticed(view.id)
    return handle


def _approved_while_cmi_holds(
    cmi_holds: str,
    callback_id: int,
    trans_id: str,
    changes_at_query: tuple[int, str] | None = None,
    queued: timedelta = timedelta(0),
) -> Scenario:
    """An approval answered POSTAUTH, then CMI's order status says what it really holds (from the
    n-th status query on, what ``changes_at_query`` says). The callback reached the portal
    ``queued`` before its Update."""

    async def scenario(r: Recording, path: RecordedPath) -> PaymentHandle:
        plan = Plan([PORTNET_INVOICE.id], cmi_holds=cmi_holds, cmi_changes_at_query=changes_at_query)
        handle, view = await _start(r, path, plan=plan)
        await r.skip(ON_CMI_PAGE)
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result, approval(view, callback_id, trans_id, await r.received_now(queued))
        )
        expect(decision.answer == "ACTION=POSTAUTH", f"approval not captured: {decision}")
        return handle

    return scenario


async def approval_during_release(r: Recording, path: RecordedPath) -> PaymentHandle:
    """The payer cancels; CMI's approval lands while the release runs: acknowledged, never captured."""
    invoices = [PORTNET_INVOICE]
    inp = r.payment_input(path, Channel.CMI_CARD, invoices)
    handle, view = await r.start_payment(
        inp, invoices, Plan([i.id for i in invoices], held={"release_invoices"})
    )
    await r.skip(ON_CMI_PAGE)
    await handle.signal(PaymentWorkflow.cancel, f"Annulé par {USER_NAME}")
    await r.world.reached("release_invoices", view.id)
    decision = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 108, "26333LATE00960", await r.received_now())
    )
    expect(decision.answer == "APPROVED", f"an approval during the release was captured: {decision}")
    r.world.let_go("release_invoices", view.id)
    return handle


async def operator_cancel_during_settlement(r: Recording, path: RecordedPath) -> PaymentHandle:
    """The operator cancels while the accepted approval is being settled: it settles and confirms."""
    invoices = [PORTNET_INVOICE]
    inp = r.payment_input(path, Channel.CMI_CARD, invoices)
    handle, view = await r.start_payment(
        inp, invoices, Plan([i.id for i in invoices], held={"settle_payment"})
    )
    await r.skip(ON_CMI_PAGE)
    decision = await handle.execute_update(
        PaymentWorkflow.cmi_result, approval(view, 109, "26333SETL00961", await r.received_now())
    )
    expect(decision.answer == "ACTION=POSTAUTH", f"approval not captured: {decision}")
    await r.world.reached("settle_payment", view.id)
    await handle.cancel()
    r.world.let_go("settle_payment", view.id)
    return handle


SCENARIOS: dict[str, Scenario] = {
    "payment_card_approved": approved,
    "payment_card_declined_then_approved": declined_then_approved,
    "payment_card_expired": expired,
    "payment_card_declined_then_expired": declined_then_expired,
    "payment_card_cancelled_by_payer": cancelled_by_payer,
    "payment_card_cancelled_by_operator": cancelled_by_operator,
    "payment_card_invoice_already_held": invoice_already_held,
    "payment_card_emitter_acknowledged": emitter_acknowledged,
    "payment_card_emitter_silent": emitter_silent,
    "payment_card_capture_confirmed": _approved_while_cmi_holds(CAPTURED, 108, "26333CAPT00961"),
    "payment_card_captured_through_api": _approved_while_cmi_holds(AUTHORISED, 109, "26333LOST00962"),
    "payment_card_not_captured": _approved_while_cmi_holds(NOTHING, 110, "26333NONE00963"),
    # Recorded again once CMI's order is looked at soon after the answer, and again during its grace.
    "payment_card_capture_seen_early": _approved_while_cmi_holds(CAPTURED, 111, "26333EARL00964"),
    "payment_card_capture_seen_at_a_later_look": _approved_while_cmi_holds(
        AUTHORISED, 112, "26333LATE00965", changes_at_query=(3, CAPTURED)
    ),
    "payment_card_captured_through_api_after_the_looks": _approved_while_cmi_holds(
        AUTHORISED, 113, "26333GRAC00966"
    ),
    "payment_card_voided_during_the_looks": _approved_while_cmi_holds(
        AUTHORISED, 114, "26333VOID00967", changes_at_query=(2, NOTHING)
    ),
    "payment_card_capture_after_a_queued_callback": _approved_while_cmi_holds(
        CAPTURED, 115, "26333QUED00968", queued=timedelta(seconds=1)
    ),
    "payment_card_approval_during_release": approval_during_release,
    "payment_card_operator_cancel_during_settlement": operator_cancel_during_settlement,
    # Recorded again once the e-mail and the notices went out side by side (the first one predates it).
    "payment_card_mail_and_notices_together": emitter_acknowledged,
}
