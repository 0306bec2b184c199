"""CMI card on the time-skipping server: the deadline, declines, late approvals, cancels, emitters.

An attempt nobody pays gives its invoices back. The worker runs the real activities (the ledger is
real, no partner answers here): these tests are about the workflow's rules; the HTTP side is in
tests/integration/test_card_payment.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.cmi_card import (
    AUTHORISED,
    CAPTURED,
    NOTHING,
    WATCH_PAUSES,
    CaptureWatchInput,
    CardOrderStatus,
    watch_for_capture,
)
from portnet.models import Document, Invoice, InvoiceHold, InvoiceMessage, Payment
from tests.support.fakes import CmiBank, PartnerFakes, watch_on_a_virtual_clock
from tests.support.ledger import refreshed
from tests.support.workers import payment_input, running_worker, start, wait_status, worker_with_fakes
from workflows.attempt import CLOSING_RULE, CURRENT_RULES, IN_CURRENT_RULES, RECEIPT_AFTER_SETTLEMENT
from workflows.channels.cmi_card import (
    CAPTURE_CONFIRMED,
    CAPTURE_EARLY_LOOK,
    CAPTURE_PROMPT_LOOK,
    CAPTURE_WATCH,
    reached_promptly,
)
from workflows.payment import PaymentWorkflow
from workflows.policies import (
    CAPTURE_FIRST_LOOK,
    CAPTURE_LATER_LOOKS,
    CAPTURE_LOOKS,
    CAPTURE_PROMPT_LOOKS,
    CAPTURE_WATCH_SPAN,
    PROMPT_CALLBACK,
)
from workflows.settlement import MAIL_AND_NOTICES_TOGETHER
from workflows.types import CmiResult, PaymentView


async def test_unpaid_card_attempt_expires_at_its_deadline(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=1200)
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        view = await wait_status(handle, "awaiting_payer")
        assert view.amount == "120.00" and view.next_action is not None
        assert view.next_action.fields is not None and view.next_action.fields["oid"] == inp.payment_id
        assert refreshed(db, invoice).status == "in_payment"
        result = await handle.result()  # the server skips the 20 minutes
    assert result.status == "expired"
    assert refreshed(db, invoice).status == "unpaid"
    assert db.exec(select(InvoiceHold).where(InvoiceHold.invoice_id == invoice.id)).first() is None
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None and payment.status == "expired"
    messages = db.exec(
        select(InvoiceMessage)
        .where(InvoiceMessage.invoice_id == invoice.id)
        .order_by(col(InvoiceMessage.seq))
    ).all()
    assert [m.name for m in messages] == ["CMI_PAY_REQ", "CMI_PAY_EXPIRED"]
    # The guide's payment line: the invoice's state as the payer found it, its numbers.
    assert (messages[0].state, messages[0].observations) == (
        "unpaid",
        f"Reglement des factures: {invoice.number}",
    )


async def test_deadline_after_declines_is_a_failure_with_the_declines_logged(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=600)
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(
                callback_id=1,
                approved=False,
                proc_return_code="05",
                trans_id="T1",
                amount="120.00",
                err_msg="Transaction refusée",
            ),
        )
        assert decision.answer == "APPROVED"
        view = await handle.query(PaymentWorkflow.state)
        assert view is not None and view.declines == 1 and view.status == "awaiting_payer"
        result = await handle.result()
    assert result.status == "failed"
    assert refreshed(db, invoice).status == "unpaid"
    observations = [
        m.observations or ""
        for m in db.exec(select(InvoiceMessage).where(InvoiceMessage.invoice_id == invoice.id)).all()
    ]
    assert any("code 05" in o for o in observations)


async def test_late_approval_after_expiry_is_not_captured(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=60)
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await time_env.sleep(timedelta(seconds=61))
        result = await handle.result()
        assert result.status == "expired"
    # The workflow is closed: an approval now is answered by the web layer with APPROVED (no capture).
    assert refreshed(db, invoice).status == "unpaid"


async def test_payer_cancel_releases_at_once(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await handle.signal(PaymentWorkflow.cancel, "Annulé par le payeur")
        result = await handle.result()
    assert result.status == "cancelled"
    assert refreshed(db, invoice).status == "unpaid"


async def test_second_attempt_on_a_held_invoice_fails_with_conflict(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    first = payment_input(invoice.company_id, [invoice.id or 0])
    second = payment_input(invoice.company_id, [invoice.id or 0])
    async with running_worker(time_env.client) as queue:
        h1 = await start(time_env.client, first, queue)
        await wait_status(h1, "awaiting_payer")
        h2 = await start(time_env.client, second, queue)
        result = await h2.result()
        assert result.status == "failed" and result.error_code == "conflict"
        await h1.signal(PaymentWorkflow.cancel, "fin du test")
        await h1.result()
    payment = db.get(Payment, second.payment_id)
    assert payment is not None and payment.status == "failed"


async def test_emitter_that_never_acknowledges_leaves_invoice_awaiting_partner(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """ANP's invoice paid by card: ANP takes the settlement notice but never acknowledges it, so the
    attempt ends at the acknowledgement deadline and the invoice waits for ANP, for finance to see."""
    invoice = make_invoice(emitter_code="611AGEN001")
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    fakes = PartnerFakes().silent_emitters() + CmiBank().activities()
    async with worker_with_fakes(time_env.client, fakes) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(
                callback_id=2,
                approved=True,
                proc_return_code="00",
                trans_id="T9",
                amount="120.00",
                auth_code="123456",
                masked_pan="400000******0010",
            ),
        )
        assert decision.answer == "ACTION=POSTAUTH"
        result = await handle.result()  # the server skips the hour of the acknowledgement deadline
    assert result.status == "succeeded" and result.receipt_document_id is not None
    assert result.awaiting_emitters == ["611AGEN001"]
    assert refreshed(db, invoice).status == "awaiting_partner"


async def test_operator_cancel_from_temporal_gives_the_invoices_back(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    async with running_worker(time_env.client) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        await handle.cancel()
        try:
            await handle.result()
        except Exception:  # noqa: BLE001, S110 - the workflow ends cancelled, which result() raises
            pass
    assert refreshed(db, invoice).status == "unpaid"
    payment = db.get(Payment, inp.payment_id)
    assert payment is not None and payment.status == "cancelled"


async def test_a_card_callback_for_an_attempt_of_another_channel_captures_nothing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Only the card channel takes CMI's callback: a Fatourati attempt waiting for its payer stays so."""
    invoice = make_invoice()
    inp = payment_input(invoice.company_id, [invoice.id or 0], deadline=3 * 3600)
    inp.channel = "cmi_fatourati"
    async with worker_with_fakes(time_env.client, PartnerFakes().fatourati_and_mail()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        decision = await handle.execute_update(
            PaymentWorkflow.cmi_result,
            CmiResult(callback_id=3, approved=True, proc_return_code="00", trans_id="T7", amount="120.00"),
        )
        assert decision.answer == "APPROVED"
        view = await handle.query(PaymentWorkflow.state)
        assert view is not None and view.status == "awaiting_payer" and view.transaction_id is None
        await handle.signal(PaymentWorkflow.cancel, "fin du test")
        assert (await handle.result()).status == "cancelled"
    assert refreshed(db, invoice).status == "unpaid"


# --- capture confirmed with CMI, not assumed ------------------------------------------------------


def card_approval(trans_id: str, callback_id: int = 20, received_at: datetime | None = None) -> CmiResult:
    return CmiResult(
        callback_id=callback_id,
        approved=True,
        proc_return_code="00",
        trans_id=trans_id,
        amount="120.00",
        auth_code="614207",
        masked_pan="400000***0010",
        received_at=received_at.isoformat() if received_at else None,
    )


async def pay_while_cmi_holds(
    time_env: WorkflowEnvironment, bank: CmiBank, invoice: Invoice, trans_id: str
) -> tuple[PartnerFakes, str, PaymentView]:
    """An approved callback answered POSTAUTH; CMI's XML API then says what ``bank`` holds."""
    fakes, payment_id, result, _ = await pay_and_trace(time_env, bank, invoice, trans_id)
    return fakes, payment_id, result


async def pay_and_trace(
    time_env: WorkflowEnvironment,
    bank: CmiBank,
    invoice: Invoice,
    trans_id: str,
    queued: timedelta = timedelta(0),
) -> tuple[PartnerFakes, str, PaymentView, WorkflowHistory]:
    """``pay_while_cmi_holds``, with the attempt's history. The callback reached the portal
    ``queued`` before its Update is sent (the portal's stamp, ``received_at``)."""
    fakes = PartnerFakes()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    async with worker_with_fakes(time_env.client, fakes.silent_emitters() + bank.activities()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        received_at = await time_env.get_current_time() - queued
        approval = card_approval(trans_id, received_at=received_at)
        decision = await handle.execute_update(PaymentWorkflow.cmi_result, approval)
        assert decision.answer == "ACTION=POSTAUTH"
        result = await handle.result()
        history = await handle.fetch_history()
    return fakes, inp.payment_id, result, history


Step = tuple[str, timedelta | str]


def after_approval(history: WorkflowHistory) -> list[Step]:
    """What the workflow did after CMI's approval, in order: its timers (workflow time, as written in
    its history) and the activities it scheduled."""
    steps: list[Step] = []
    approved = False
    for event in history.events:
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            approved = approved or name == "cmi_result"
        elif approved and event.HasField("timer_started_event_attributes"):
            steps.append(("timer", event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()))
        elif approved and event.HasField("activity_task_scheduled_event_attributes"):
            steps.append(("activity", event.activity_task_scheduled_event_attributes.activity_type.name))
    return steps


def scheduled_after_the_answer(history: WorkflowHistory, activity_name: str) -> timedelta:
    """How long after CMI's approval was accepted (its Update) the activity was first scheduled, in
    the history's own time (the time-skipping server's, timers included)."""
    answered: datetime | None = None
    for event in history.events:
        if answered is None and event.HasField("workflow_execution_update_accepted_event_attributes"):
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            if update.name == "cmi_result":
                answered = event.event_time.ToDatetime()
        elif answered is not None and event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity_name:
                return event.event_time.ToDatetime() - answered
    raise AssertionError(f"{activity_name} never scheduled after the approval")


def kinds(steps: list[Step]) -> list[Step]:
    """The steps with each timer's length left out (it depends on how long the watch took)."""
    return [("timer", "") if kind == "timer" else (kind, what) for kind, what in steps]


# Since ``receipt-after-settlement`` the receipt is issued by its own activity once the money is settled.
SETTLED: list[Step] = [
    ("activity", "settle_payment"),
    ("activity", "issue_receipt"),
    ("activity", "send_payment_email"),
]
# Since ``cmi-capture-watch``: the looks in the moments after our answer, in one activity...
WATCHED: list[Step] = [("activity", "watch_card_capture")]
# ...then one timer and one look at each of CAPTURE_LATER_LOOKS while CMI shows an authorisation only.
LATER_LOOK: list[Step] = [("timer", ""), ("activity", "check_card_capture")]


async def full_watch() -> list[timedelta]:
    """When each look of a watch begins, from our answer, while CMI shows an authorisation only."""
    answered = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    began: list[timedelta] = []
    clock: list[datetime] = []

    async def look() -> CardOrderStatus:
        began.append(clock[0] - answered)
        return CardOrderStatus(AUTHORISED, "A")

    async def pause(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    clock.append(answered)
    status = await watch_for_capture(look, answered + CAPTURE_WATCH_SPAN, lambda: clock[0], pause)
    assert status.state == AUTHORISED
    return began


async def test_approval_settles_once_cmi_confirms_the_capture(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    bank = CmiBank(state=CAPTURED)
    fakes, payment_id, result = await pay_while_cmi_holds(time_env, bank, invoice, "T-CAPTURED")
    assert bank.queries == ["T-CAPTURED"] and bank.captures == []  # asked CMI; nothing to capture
    assert result.status == "succeeded" and result.receipt_document_id is not None
    assert refreshed(db, invoice).status == "paid"
    assert [kind for kind, _ in fakes.mails] == ["payment_confirmed"]


async def test_lost_postauth_answer_is_captured_through_the_api_before_settling(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Our POSTAUTH answer never reached CMI (worker slow past CMI's 10 s): CMI holds an authorisation
    only, so the workflow captures it (PostAuth) while the invoice is still held, then settles."""
    invoice = make_invoice()

    def invoice_status(payment_id: str) -> str:
        with Session(db.get_bind()) as session:
            found = session.get(Invoice, invoice.id)
            return found.status if found is not None else "?"

    bank = CmiBank(state=AUTHORISED, on_capture=invoice_status)
    fakes, payment_id, result = await pay_while_cmi_holds(time_env, bank, invoice, "T-LOST")
    assert bank.captures == ["T-LOST"] and bank.state == CAPTURED
    assert bank.seen_by_capture == ["in_payment"]  # captured before the settlement
    assert result.status == "succeeded" and result.transaction_id == "T-LOST"
    assert refreshed(db, invoice).status == "paid"


async def test_capture_refused_because_the_answer_arrived_meanwhile_settles_on_cmis_word(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Authorised when asked, but our late answer reached CMI just before the PostAuth, which CMI
    refuses (already captured): a second look at the order says captured, and the attempt settles."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED, answer_arrives=True)
    _, _, result = await pay_while_cmi_holds(time_env, bank, invoice, "T-RACE")
    # Authorised at every look of the grace, then the PostAuth (refused), then one more look.
    looks = len(await full_watch()) + len(CAPTURE_LATER_LOOKS)
    assert bank.queries == ["T-RACE"] * (looks + 1) and bank.captures == ["T-RACE"]
    assert result.status == "succeeded"
    assert refreshed(db, invoice).status == "paid"


async def test_no_authorisation_at_cmi_settles_nothing_and_gives_the_invoices_back(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    bank = CmiBank(state=NOTHING)
    fakes, payment_id, result = await pay_while_cmi_holds(time_env, bank, invoice, "T-NONE")
    assert bank.queries == ["T-NONE"]  # nothing held at the first look: no looking further
    assert bank.captures == []  # nothing to capture
    assert result.status == "failed" and result.receipt_document_id is None
    assert fakes.mails == []  # no confirmation e-mail
    assert refreshed(db, invoice).status == "unpaid"
    assert db.exec(select(InvoiceHold).where(InvoiceHold.invoice_id == invoice.id)).first() is None
    payment = db.get(Payment, payment_id)
    assert payment is not None and payment.status == "failed" and payment.paid_at is None
    assert payment.partner_transaction_id is None
    assert db.exec(select(Document).where(Document.payment_id == payment_id)).all() == []


# --- when CMI is asked: soon after our answer, and the PostAuth only after CMI's whole grace ----------


def test_the_looks_of_the_older_rules_span_cmis_whole_grace_and_grow() -> None:
    """The timers of the attempts begun before ``cmi-capture-watch`` (their histories replay them)."""
    for schedule in (CAPTURE_LOOKS, CAPTURE_PROMPT_LOOKS):
        assert sum(schedule, timedelta()) == CAPTURE_FIRST_LOOK
        assert list(schedule) == sorted(schedule) and schedule[0] < CAPTURE_FIRST_LOOK / 10
    # A first look too early costs one look: the second comes when the first used to.
    assert CAPTURE_PROMPT_LOOKS[0] + CAPTURE_PROMPT_LOOKS[1] == CAPTURE_LOOKS[0]
    assert CAPTURE_PROMPT_LOOKS[2:] == CAPTURE_LOOKS[1:]


async def test_the_watch_looks_at_once_then_less_often_and_last_at_its_end() -> None:
    """An authorisation alone at every look: the first look at once, pauses that double up to the
    longest, and a last look that begins exactly at the watch's end; none after it. The watch ends
    well before the first later look, and the last later look is at the end of CMI's grace."""
    began = await full_watch()
    ms = [round(t / timedelta(milliseconds=1)) for t in began]
    assert ms == [0, 10, 30, 70, 150, 310, 400]
    assert began[-1] == CAPTURE_WATCH_SPAN and began[-2] < CAPTURE_WATCH_SPAN
    assert max(b - a for a, b in zip(began, began[1:], strict=False)) == WATCH_PAUSES[-1]
    assert CAPTURE_WATCH_SPAN < CAPTURE_LATER_LOOKS[0] and CAPTURE_LATER_LOOKS[-1] == CAPTURE_FIRST_LOOK


@pytest.mark.parametrize(("state", "looks"), [(CAPTURED, 1), (NOTHING, 1)])
async def test_the_watch_ends_at_the_first_look_that_is_not_an_authorisation_alone(
    state: str, looks: int
) -> None:
    seen: list[str] = []

    async def look() -> CardOrderStatus:
        seen.append(state)
        return CardOrderStatus(state, state)

    inp = CaptureWatchInput("P1", "T1", (datetime.now(UTC) + CAPTURE_WATCH_SPAN).isoformat())
    assert (await watch_on_a_virtual_clock(look, inp)).state == state
    assert len(seen) == looks


async def test_a_watch_retried_after_its_end_looks_once() -> None:
    """Temporal retries a watch that failed (a CMI outage) with the same end: once it is past, one
    look, and the workflow's later looks take over; the watch never starts again."""
    until = datetime(2026, 12, 1, 9, 0, 0, 400000, tzinfo=UTC)
    looks: list[datetime] = []
    now = until + timedelta(seconds=40)

    async def look() -> CardOrderStatus:
        looks.append(now)
        return CardOrderStatus(AUTHORISED, "A")

    async def pause(seconds: float) -> None:
        raise AssertionError("no pause once the watch's end is past")

    assert (await watch_for_capture(look, until, lambda: now, pause)).state == AUTHORISED
    assert looks == [now]


async def test_capture_seen_at_the_first_look_settles_without_waiting_the_grace(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    bank = CmiBank(state=CAPTURED)
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-EARLY")
    steps = after_approval(history)
    assert steps == WATCHED + SETTLED  # no timer: one watch, one query, settled
    assert bank.queries == ["T-EARLY"] and bank.captures == []
    assert result.status == "succeeded"
    assert refreshed(db, invoice).status == "paid"


async def test_the_grace_counts_from_our_answer_not_from_the_callbacks_arrival(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The callback reached the portal an hour before its Update reached the workflow: the watch
    counts from when the workflow answered POSTAUTH (workflow time), which is what CMI waits for."""
    invoice = make_invoice()
    bank = CmiBank(state=CAPTURED)
    before = await time_env.get_current_time()
    _, _, result, history = await pay_and_trace(
        time_env, bank, invoice, "T-QUEUED", queued=timedelta(hours=1)
    )
    assert after_approval(history) == WATCHED + SETTLED
    (watch,) = bank.watches
    answered = datetime.fromisoformat(watch.until) - CAPTURE_WATCH_SPAN
    assert before <= answered <= await time_env.get_current_time()
    assert result.status == "succeeded"


@pytest.mark.parametrize(
    ("received_at", "prompt"),
    [
        ("2026-11-30T12:00:00.000+00:00", True),  # no wait
        ("2026-11-30T11:59:59.900+00:00", True),  # PROMPT_CALLBACK exactly
        ("2026-11-30T12:59:59.950+01:00", True),  # another time zone, 50 ms
        ("2026-11-30T11:59:59.899+00:00", False),  # queued a moment too long
        ("2026-11-30T12:00:00.010+00:00", False),  # after the workflow's now: the clocks disagree
        ("2026-11-30T12:00:00", False),  # no time zone
        ("not a time", False),
        (None, False),  # an older portal
    ],
)
def test_a_callback_is_prompt_only_when_its_stamp_says_so(received_at: str | None, prompt: bool) -> None:
    """For the attempts begun on the 2026-12 rules (first look at 50 or 150 ms)."""
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert PROMPT_CALLBACK == timedelta(milliseconds=100)
    assert reached_promptly(received_at, now) is prompt


async def test_capture_seen_at_a_later_look_settles_without_capturing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """CMI reads our answer only after two looks showed an authorisation only: the third look finds
    the capture, and the attempt settles without a PostAuth and before the grace is over."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED, changes_at_query=(3, CAPTURED))
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-LATER")
    steps = after_approval(history)
    assert steps == WATCHED + SETTLED
    assert bank.queries == ["T-LATER"] * 3 and bank.captures == []
    assert result.status == "succeeded" and result.transaction_id == "T-LATER"
    assert refreshed(db, invoice).status == "paid"


async def test_capture_seen_after_the_watch_at_a_later_look_settles_without_capturing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """CMI reads our answer late (under load): the watch ends on an authorisation alone, and the first
    later look, a timer away, finds the capture."""
    invoice = make_invoice()
    watched = len(await full_watch())
    bank = CmiBank(state=AUTHORISED, changes_at_query=(watched + 1, CAPTURED))
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-SLOW")
    assert kinds(after_approval(history)) == WATCHED + LATER_LOOK + SETTLED
    later = scheduled_after_the_answer(history, "check_card_capture")
    assert CAPTURE_LATER_LOOKS[0] <= later < CAPTURE_LATER_LOOKS[1]
    assert bank.queries == ["T-SLOW"] * (watched + 1) and bank.captures == []
    assert result.status == "succeeded"


async def test_a_slow_watch_skips_the_later_look_it_outlasted_but_never_the_last(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """The watch took a second (CMI slow to answer, or a retry): the look at 900 ms is past and
    skipped, the watch having just looked; the last look still waits for the end of CMI's grace,
    counted from when the watch was scheduled, and only then comes the PostAuth."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED, watch_takes=1.0)
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-SLOWWATCH")
    captured: list[Step] = [("activity", "capture_card_payment")]
    assert kinds(after_approval(history)) == WATCHED + LATER_LOOK + captured + SETTLED
    assert scheduled_after_the_answer(history, "check_card_capture") >= CAPTURE_FIRST_LOOK
    assert bank.queries == ["T-SLOWWATCH"] * (len(await full_watch()) + 1)
    assert result.status == "succeeded"


async def test_an_approval_redelivered_during_the_looks_gives_cmi_its_whole_grace_again(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """CMI timed out on our first answer and sent the approval again 800 ms later, while the attempt
    waited for its later looks: the redelivery is answered POSTAUTH again, and CMI may capture on that
    answer, so the PostAuth waits CMI's whole grace from it, not from the first."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED)
    fakes = PartnerFakes()
    inp = payment_input(invoice.company_id, [invoice.id or 0])
    async with worker_with_fakes(time_env.client, fakes.silent_emitters() + bank.activities()) as queue:
        handle = await start(time_env.client, inp, queue)
        await wait_status(handle, "awaiting_payer")
        approval = card_approval("T-AGAIN", received_at=await time_env.get_current_time())
        assert (await handle.execute_update(PaymentWorkflow.cmi_result, approval)).answer == "ACTION=POSTAUTH"
        await time_env.sleep(timedelta(milliseconds=800))
        again = card_approval("T-AGAIN", callback_id=21, received_at=await time_env.get_current_time())
        assert (await handle.execute_update(PaymentWorkflow.cmi_result, again)).answer == "ACTION=POSTAUTH"
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.status == "succeeded" and bank.captures == ["T-AGAIN"]
    redelivered = timedelta(milliseconds=800)
    assert scheduled_after_the_answer(history, "capture_card_payment") >= redelivered + CAPTURE_FIRST_LOOK


async def test_authorisation_alone_through_the_grace_is_captured_only_after_it(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Our answer never reached CMI: every look shows an authorisation only. The PostAuth comes after
    the watch and the later looks, the last of them once CMI's whole grace was over, and before the
    settlement."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED)
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-GRACE")
    steps = kinds(after_approval(history))
    captured: list[Step] = [("activity", "capture_card_payment")]
    assert steps == WATCHED + LATER_LOOK * len(CAPTURE_LATER_LOOKS) + captured + SETTLED
    assert scheduled_after_the_answer(history, "capture_card_payment") >= CAPTURE_FIRST_LOOK
    looks = len(await full_watch()) + len(CAPTURE_LATER_LOOKS)
    assert bank.queries == ["T-GRACE"] * looks and bank.captures == ["T-GRACE"]
    assert result.status == "succeeded"
    assert refreshed(db, invoice).status == "paid"


async def test_authorisation_voided_at_a_later_look_settles_nothing(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    """Neither captured nor authorised (voided) at the second look: not settled, as after the grace."""
    invoice = make_invoice()
    bank = CmiBank(state=AUTHORISED, changes_at_query=(2, NOTHING))
    _, _, result, history = await pay_and_trace(time_env, bank, invoice, "T-VOID")
    steps = after_approval(history)
    assert steps == WATCHED + [("activity", "release_invoices")]
    assert bank.queries == ["T-VOID"] * 2 and bank.captures == []
    assert result.status == "failed"
    assert refreshed(db, invoice).status == "unpaid"


# --- the rules an attempt begins on: one marker, and every status finance filters on --------------


def test_the_current_rules_name_every_rule_patched_in_so_far() -> None:
    assert IN_CURRENT_RULES == {
        CLOSING_RULE,
        CAPTURE_CONFIRMED,
        CAPTURE_EARLY_LOOK,
        MAIL_AND_NOTICES_TOGETHER,
        CAPTURE_PROMPT_LOOK,
        CAPTURE_WATCH,
        RECEIPT_AFTER_SETTLEMENT,
    }


def patches_and_upserts(history: WorkflowHistory) -> tuple[list[str], list[tuple[str, object]]]:
    """The patch ids the history records, and each search attribute upsert (name, value) in order."""
    patches: list[str] = []
    upserts: list[tuple[str, object]] = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                patches.append(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            upserts += [(name, json.loads(payload.data)) for name, payload in fields.items()]
    return patches, upserts


async def test_a_new_attempt_records_its_rules_once_and_every_status_finance_filters_on(
    time_env: WorkflowEnvironment, make_invoice: Callable[..., Invoice]
) -> None:
    """One patch marker and one TemporalChangeVersion upsert for all the rules (not one of each per
    rule, two events apiece); ``PaymentStatus`` still upserted at each change of status."""
    bank = CmiBank(state=CAPTURED)
    _, _, result, history = await pay_and_trace(time_env, bank, make_invoice(), "T-RULES")
    patches, upserts = patches_and_upserts(history)
    assert patches == [CURRENT_RULES]
    assert upserts == [
        ("TemporalChangeVersion", [CURRENT_RULES]),
        ("PaymentStatus", "awaiting_payer"),
        ("PaymentStatus", "awaiting_confirmation"),
        ("PaymentStatus", "succeeded"),
    ]
    assert result.status == "succeeded"
