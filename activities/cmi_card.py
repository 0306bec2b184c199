"""CMI card adapter: the hosted-page form the payer's browser is sent to, and CMI's XML API.

Building the form is pure computation with a secret (the store key), so it is an activity (the key
must stay out of workflow code) and a local one (no server round trip for a few microseconds of work).

After the workflow answered ``ACTION=POSTAUTH``, it asks CMI what CMI actually holds
(``watch_card_capture``: ORDERHISTORY queries in the moments after our answer, until CMI shows the
capture; ``check_card_capture``, one query) and captures an authorisation our answer never
reached (``capture_card_payment``, PostAuth). Both are harmless to repeat (a query; a capture CMI
makes once and refuses the second time), so every failure is left to Temporal's retry policy: a
network error, an error answer, an answer failing a field rule (which is no answer).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import partner_client
from activities.types import NextAction, PayerInfo
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import cmi_api
from portnet.protocols.fields import MessageRejected
from portnet.settings import get_settings


@dataclass
class CmiFormInput:
    payment_id: str
    amount: str
    payer: PayerInfo
    client_name: str
    lang: str = "fr"


def payment_urls(base_url: str, payment_id: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "ok_url": f"{base}/paiements/{payment_id}/retour",
        "fail_url": f"{base}/paiements/{payment_id}/retour",
        "shop_url": f"{base}/paiements/{payment_id}/annuler",
        "callback_url": f"{base}/api/v1/callbacks/cmi",
    }


@activity.defn
def build_card_form(inp: CmiFormInput) -> NextAction:
    settings = get_settings()
    fields = cmi_protocol.build_payment_fields(
        client_id=settings.cmi_client_id,
        store_key=settings.cmi_store_key,
        oid=inp.payment_id,
        amount=inp.amount,
        rnd=secrets.token_hex(10),
        email=inp.payer.email,
        bill_to_name=inp.payer.name,
        bill_to_company=inp.client_name,
        tel=inp.payer.phone,
        lang=inp.lang,
        session_timeout=settings.cmi_session_timeout_seconds,
        **payment_urls(settings.public_base_url, inp.payment_id),
    )
    return NextAction(type="redirect_form", url=settings.cmi_gateway_url, fields=fields)


# What CMI holds for the approved transaction, as the workflow reads it.
CAPTURED = "captured"
AUTHORISED = "authorised"
NOTHING = "nothing"  # declined, voided, or a transaction CMI does not list


@dataclass
class CardOrderInput:
    payment_id: str
    trans_id: str  # the approved callback's TransId


@dataclass
class CardOrderStatus:
    state: str  # CAPTURED | AUTHORISED | NOTHING
    detail: str  # CMI's state letter for the transaction, or why there is none


@dataclass
class CardCapture:
    captured: bool
    trans_id: str  # the PostAuth's own transaction number at CMI, when done
    detail: str  # CMI's ProcReturnCode (its ErrMsg is not repeated: it is unsigned text)


async def _call_api(body: bytes, oid: str) -> cmi_api.ApiAnswer:
    settings = get_settings()
    try:
        response = await partner_client("cmi_api", 20).post(
            settings.cmi_api_url,
            content=body,
            headers={"Content-Type": "application/xml; charset=utf-8"},
        )
    except httpx.HTTPError as err:
        raise ApplicationError(
            f"CMI API unreachable: {type(err).__name__}", type="CmiApiUnavailable"
        ) from None
    if response.status_code != 200:
        raise ApplicationError(f"CMI API answered HTTP {response.status_code}", type="CmiApiUnavailable")
    try:
        return cmi_api.read_answer(response.content, oid)
    except MessageRejected as rejected:
        # Not an answer: nothing of it is used; asking again is harmless.
        raise ApplicationError(f"CMI API answer rejected: {rejected}", type="CmiApiAnswerRejected") from None


def _credentials(payment_id: str) -> tuple[str, str, str, str]:
    settings = get_settings()
    return settings.cmi_api_name, settings.cmi_api_password, settings.cmi_client_id, payment_id


async def order_history(payment_id: str) -> cmi_api.ApiAnswer:
    """ORDERHISTORY for any order (reconciliation asks it of card attempts that ended unpaid).

    An answer that is not an order history (an error about the request) raises, retryably.
    """
    answer = await _call_api(cmi_api.order_history_request(*_credentials(payment_id)), payment_id)
    if answer.transactions is None:
        raise ApplicationError(
            f"CMI API refused the status query (code {answer.proc_return_code})", type="CmiApiError"
        )
    return answer


@activity.defn
async def check_card_capture(inp: CardOrderInput) -> CardOrderStatus:
    """ORDERHISTORY: is the approved transaction captured, only authorised, or not held at all?"""
    answer = await _call_api(cmi_api.order_history_request(*_credentials(inp.payment_id)), inp.payment_id)
    if answer.transactions is None:
        # An error about the request (credentials, client id): retried until someone fixes it.
        raise ApplicationError(
            f"CMI API refused the status query (code {answer.proc_return_code})", type="CmiApiError"
        )
    state = answer.state_of(inp.trans_id)
    if state == cmi_api.CAPTURED:
        return CardOrderStatus(CAPTURED, state)
    if state == cmi_api.AUTHORISED:
        return CardOrderStatus(AUTHORISED, state)
    return CardOrderStatus(NOTHING, state or "transaction inconnue de CMI")


@dataclass
class CaptureWatchInput:
    payment_id: str
    trans_id: str  # the approved callback's TransId
    # When the watch stops looking (ISO 8601 with its zone): our answer's time, in workflow time, plus
    # CAPTURE_WATCH_SPAN. Fixed by the workflow, so a retried watch keeps it.
    until: str


@dataclass
class CaptureWatch(CardOrderStatus):
    """What the watch's last look found, and when Temporal scheduled the watch (ISO 8601 with its
    zone, the server's clock): the workflow task that answered CMI POSTAUTH scheduled it as it
    completed, so our answer left no earlier. Flat (str fields only): the workflow sandbox decodes
    a nested dataclass's forward reference without the module's names."""

    scheduled_at: str


# The most a watch looks for by the worker's own clock, whatever the workflow's ``until`` says: a
# worker whose clock is behind the server's would otherwise watch for as long as it is behind.
WATCH_LIMIT = timedelta(seconds=1)

# The pauses between two looks while CMI shows an authorisation only. CMI records the capture a few
# milliseconds after reading our answer (the sandbox: as it records the callback's reply): alone,
# the first or second look finds it; under load our answer reaches CMI later, and the pauses grow.
WATCH_PAUSES = tuple(timedelta(milliseconds=ms) for ms in (10, 20, 40, 80, 160))


async def watch_for_capture(
    look: Callable[[], Awaitable[CardOrderStatus]],
    until: datetime,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[object]],
) -> CardOrderStatus:
    """Looks at CMI's order until it shows anything but an authorisation alone, or until a look that
    began at ``until`` or later still shows one: the workflow's timers take over from there. The
    clock and the pause are passed in so the workflow tests' fakes run the same loop without
    waiting."""
    pauses = iter(WATCH_PAUSES)
    while True:
        began = now()
        status = await look()
        if status.state != AUTHORISED or began >= until:
            return status
        pause = min(next(pauses, WATCH_PAUSES[-1]), until - now())
        await sleep(max(pause.total_seconds(), 0.0))


def scheduled_at() -> str:
    """When Temporal scheduled the running activity (its first attempt), from the server's clock."""
    scheduled = activity.info().scheduled_time
    return (scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=UTC)).isoformat()


@activity.defn
async def watch_card_capture(inp: CaptureWatchInput) -> CaptureWatch:
    """ORDERHISTORY in the moments after our answer, again while CMI shows an authorisation only: one
    activity for these looks, milliseconds apart, where each would otherwise be a Temporal timer and
    activity. Short (CAPTURE_WATCH_SPAN), so an answer CMI reads late holds an activity slot briefly:
    the later looks are the workflow's timers. A failed query fails the watch, which Temporal retries
    with the same end (a retry after it looks once). It answers when it was scheduled too: the
    workflow counts CMI's grace from then."""
    until = min(datetime.fromisoformat(inp.until), datetime.now(UTC) + WATCH_LIMIT)
    order = CardOrderInput(inp.payment_id, inp.trans_id)
    status = await watch_for_capture(
        lambda: check_card_capture(order), until, lambda: datetime.now(UTC), asyncio.sleep
    )
    return CaptureWatch(status.state, status.detail, scheduled_at())


@activity.defn
async def capture_card_payment(inp: CardOrderInput) -> CardCapture:
    """PostAuth of the whole authorised amount; a refusal (already captured, nothing to capture) is an
    answer, which the workflow checks with a new status query."""
    answer = await _call_api(cmi_api.post_auth_request(*_credentials(inp.payment_id)), inp.payment_id)
    if answer.approved:
        return CardCapture(True, answer.trans_id, answer.proc_return_code)
    if answer.oid == "":
        raise ApplicationError(
            f"CMI API refused the capture request (code {answer.proc_return_code})", type="CmiApiError"
        )
    return CardCapture(False, answer.trans_id, answer.proc_return_code)


ACTIVITIES: list[Callable[..., Any]] = [
    build_card_form,
    check_card_capture,
    watch_card_capture,
    capture_card_payment,
]
