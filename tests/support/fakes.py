"""Partners and mail as controlled fakes, for the workflow tests on the time-skipping server.

Each fake is registered under the real activity's name (``tests.support.workers.worker_with_fakes``)
and takes and returns the real types, so the workflow under test is the production one; the ledger
stays real. The fakes remember what they were asked: e-mails (with their workflow time), tokens and
orders cancelled, cash codes mailed; emitters take settlement notices and never acknowledge them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity

from activities.amanpay import AmanpayOrder, AmanpayOrderInput
from activities.cmi_card import (
    AUTHORISED,
    CAPTURED,
    CaptureWatch,
    CaptureWatchInput,
    CardCapture,
    CardOrderInput,
    CardOrderStatus,
    scheduled_at,
    watch_for_capture,
)
from activities.emitters import EmitterNoticeInput
from activities.fatourati import FatouratiToken, TokenInput
from activities.ledger import mark_awaiting_partner
from activities.mail import CodeEmailInput, EmailInput, ReferenceEmailInput
from activities.paydirect import PayDirectStart, PayDirectStartInput, PayDirectVerdict, PayDirectVerifyInput
from portnet.db import session_scope
from portnet.models import PaymentChannelData
from portnet.protocols import emitter as emitter_protocol
from workflows.policies import CAPTURE_WATCH_SPAN

CASH_CODE = "18 0857 637-947"


@dataclass
class PartnerFakes:
    mails: list[tuple[str, datetime]] = field(default_factory=list)  # (kind, scheduled at)
    cancelled: list[str] = field(default_factory=list)  # payment ids of tokens and orders cancelled
    code_mails: list[CodeEmailInput] = field(default_factory=list)

    def fatourati_and_mail(self) -> list[Callable[..., Any]]:
        """CMI Fatourati's token (its reference stored as the real adapter stores it) and every e-mail."""
        fakes = self

        @activity.defn(name="create_token")
        async def create_token(inp: TokenInput) -> FatouratiToken:
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

        return [create_token, cancel_token, send_channel_email, send_payment_email]

    def silent_emitters(self) -> list[Callable[..., Any]]:
        """The confirmation e-mail, and emitters that take the settlement notice (the ledger marks the
        invoices as waiting for them) but never acknowledge it."""
        fakes = self

        @activity.defn(name="send_payment_email")
        async def send_payment_email(inp: EmailInput) -> None:
            fakes.mails.append(("payment_confirmed", activity.info().scheduled_time))

        @activity.defn(name="send_settlement_notice")
        def send_settlement_notice(inp: EmitterNoticeInput) -> str:
            notice = emitter_protocol.notice_id(inp.payment_id, inp.emitter_code)
            mark_awaiting_partner(inp.payment_id, inp.emitter_code, notice)
            return notice

        return [send_payment_email, send_settlement_notice]

    def amanpay(self) -> list[Callable[..., Any]]:
        """Amanpay orders (a fixed cash code), the code e-mail, and a PayDirect bank that finds every
        code wrong."""
        fakes = self

        @activity.defn(name="create_order")
        async def create_order(inp: AmanpayOrderInput) -> AmanpayOrder:
            if inp.method == "code":
                return AmanpayOrder(ok=True, code=CASH_CODE, expires_at="2026-11-30T00:00:00+00:00")
            return AmanpayOrder(ok=True, redirect_url="http://amanty.invalid/pay")

        @activity.defn(name="cancel_order")
        async def cancel_order(payment_id: str) -> str:
            fakes.cancelled.append(payment_id)
            return "cancelled"

        @activity.defn(name="send_code_email")
        async def send_code_email(inp: CodeEmailInput) -> None:
            fakes.code_mails.append(inp)

        @activity.defn(name="paydirect_start")
        async def paydirect_start(inp: PayDirectStartInput) -> PayDirectStart:
            return PayDirectStart(ok=True, auth_ref="PDA-TEST", attempts_left=3)

        @activity.defn(name="paydirect_resend")
        async def paydirect_resend(auth_ref: str) -> int:
            return 3

        @activity.defn(name="paydirect_verify")
        async def paydirect_verify(inp: PayDirectVerifyInput) -> PayDirectVerdict:
            return PayDirectVerdict(result="wrong", attempts_left=2)

        return [
            create_order,
            cancel_order,
            send_code_email,
            paydirect_start,
            paydirect_resend,
            paydirect_verify,
        ]


async def watch_on_a_virtual_clock(
    look: Callable[[], Awaitable[CardOrderStatus]], inp: CaptureWatchInput
) -> CardOrderStatus:
    """``watch_card_capture``'s own loop (``watch_for_capture``), its clock starting at our answer
    (its end less CAPTURE_WATCH_SPAN) and moved by its pauses instead of waiting them: the same
    looks, in no time."""
    until = datetime.fromisoformat(inp.until)
    clock = [until - CAPTURE_WATCH_SPAN]

    async def pause(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    return await watch_for_capture(look, until, lambda: clock[0], pause)


async def fake_watch(look: Callable[[], Awaitable[CardOrderStatus]], inp: CaptureWatchInput) -> CaptureWatch:
    """What ``watch_card_capture`` answers, its looks on a virtual clock (``watch_on_a_virtual_clock``)."""
    status = await watch_on_a_virtual_clock(look, inp)
    return CaptureWatch(status.state, status.detail, scheduled_at())


@dataclass
class CmiBank:
    """CMI's XML API as a workflow test scripts it: ``state`` is what the bank holds for the approved
    transaction (captured, authorised only, nothing); PostAuth captures an authorisation once.

    ``seen_by_capture`` keeps, for each PostAuth, what ``on_capture`` returned when it ran (a test
    reads the ledger there to prove the capture came before the settlement); ``answer_arrives`` makes
    the merchant's late POSTAUTH answer land just before PostAuth, which CMI then refuses;
    ``changes_at_query`` = (n, state) changes what the bank holds just before its n-th status query (1
    for the first): CMI read the merchant's answer late (captured) or voided the authorisation."""

    state: str = CAPTURED
    queries: list[str] = field(default_factory=list)
    captures: list[str] = field(default_factory=list)
    on_capture: Callable[[str], object] | None = None
    seen_by_capture: list[object] = field(default_factory=list)
    answer_arrives: bool = False
    changes_at_query: tuple[int, str] | None = None
    watches: list[CaptureWatchInput] = field(default_factory=list)
    # Seconds of real time each watch takes besides its looks (a slow CMI, a retried watch).
    watch_takes: float = 0.0

    def activities(self) -> list[Callable[..., Any]]:
        bank = self

        @activity.defn(name="check_card_capture")
        def check_card_capture(inp: CardOrderInput) -> CardOrderStatus:
            bank.queries.append(inp.trans_id)
            if bank.changes_at_query is not None and bank.changes_at_query[0] == len(bank.queries):
                bank.state = bank.changes_at_query[1]
            return CardOrderStatus(bank.state, bank.state)

        @activity.defn(name="watch_card_capture")
        async def watch_card_capture(inp: CaptureWatchInput) -> CaptureWatch:
            bank.watches.append(inp)
            await asyncio.sleep(bank.watch_takes)

            async def look() -> CardOrderStatus:
                return check_card_capture(CardOrderInput(inp.payment_id, inp.trans_id))

            return await fake_watch(look, inp)

        @activity.defn(name="capture_card_payment")
        def capture_card_payment(inp: CardOrderInput) -> CardCapture:
            bank.captures.append(inp.trans_id)
            if bank.on_capture is not None:
                bank.seen_by_capture.append(bank.on_capture(inp.payment_id))
            if bank.answer_arrives:
                bank.state = CAPTURED
            if bank.state != AUTHORISED:
                return CardCapture(False, "", "99")
            bank.state = CAPTURED
            return CardCapture(True, f"PA{len(bank.captures)}", "00")

        return [check_card_capture, watch_card_capture, capture_card_payment]
