"""Finance applies unapplied money: applied (PORTNET invoice), applied with ANP's acknowledgement,
refused because a live attempt holds the invoice."""

from __future__ import annotations

from portnet.statuses import Channel
from tests.histories.manifest import RecordedPath
from tests.histories.recording import ApplicationHandle, Recording
from tests.histories.scenarios.common import Scenario, expect
from tests.histories.world import ANP, ANP_INVOICE, PORTNET_INVOICE, UnappliedPlan
from workflows.types import EmitterAck
from workflows.unapplied import ApplyUnappliedWorkflow


async def applied(r: Recording, path: RecordedPath) -> ApplicationHandle:
    r.world.unapplied[int(path.business_id)] = UnappliedPlan(
        PORTNET_INVOICE, Channel.AMANPAY_CODE.value, "amanpay:TSH4F2A91C07B"
    )
    handle, outcome = await r.apply_unapplied(path, PORTNET_INVOICE)
    expect(
        outcome.status == "applied"
        and outcome.channel == "amanpay_code"
        and outcome.invoice_status == "paid",
        f"not applied on its own channel: {outcome}",
    )
    return handle


async def applied_emitter_acknowledged(r: Recording, path: RecordedPath) -> ApplicationHandle:
    r.world.unapplied[int(path.business_id)] = UnappliedPlan(
        ANP_INVOICE, Channel.CMI_FATOURATI.value, "FTR7C21D9E04A55"
    )
    handle, outcome = await r.apply_unapplied(path, ANP_INVOICE)
    expect(
        outcome.status == "applied" and outcome.invoice_status == "payment_confirmed",
        f"not applied: {outcome}",
    )
    assert outcome.payment_id is not None
    await r.world.noticed(outcome.payment_id)
    # ANP's acknowledgement, as web/api/callbacks.emitter_ack signals the payment's workflow.
    code = ANP[0]
    await handle.signal(
        ApplyUnappliedWorkflow.emitter_acknowledged,
        EmitterAck(
            emitter_code=code,
            notice_id=f"{outcome.payment_id}-{code}",
            emitter_ack_id="ANP-ACK-2026-09114",
            callback_id=211,
        ),
    )
    return handle


async def refused_invoice_held(r: Recording, path: RecordedPath) -> ApplicationHandle:
    r.world.unapplied[int(path.business_id)] = UnappliedPlan(
        PORTNET_INVOICE,
        Channel.AMANPAY_AMANTY.value,
        "amanpay:AMT90B3E51D2C",
        refuse_held_by="PN3A7D01C4E9B2",
    )
    handle, outcome = await r.apply_unapplied(path, PORTNET_INVOICE)
    expect(outcome.status == "refused" and outcome.error_code == "held", f"not refused: {outcome}")
    return handle


SCENARIOS: dict[str, Scenario] = {
    "unapplied_applied": applied,
    "unapplied_applied_emitter_acknowledged": applied_emitter_acknowledged,
    "unapplied_refused_invoice_held": refused_invoice_held,
}
