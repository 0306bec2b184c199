"""The partners' answers to our calls, forged by whoever sits between us: the adapters refuse them.

A scripted "partner" on a real socket answers the adapters (activities/amanpay.py,
activities/paydirect.py, activities/fatourati.py) the way an attacker in the path would: unsigned,
signed for another message type, signed but about another order, request or amount, or pointing the
payer elsewhere. Each one is treated as no answer from the partner; a forged "authorized" never
becomes a verdict the workflow could settle on. The genuine answer goes through, so each refusal is
the forgery's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlmodel import Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import amanpay, fatourati, paydirect
from activities.amanpay import AmanpayOrderInput
from activities.fatourati import TokenInput
from activities.paydirect import PayDirectStartInput, PayDirectVerifyInput
from activities.types import PayerInfo
from bench._common import free_port
from portnet import settings as portnet_settings
from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS
from portnet.models import Invoice, Payment, PaymentChannelData
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import fatourati as fproto
from portnet.settings import get_settings

Message = amanpay_protocol.Message


@dataclass
class ScriptedPartner:
    """Answers each path with what the test scripted, and keeps what it was sent."""

    replies: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    base_url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def answer(path: str, request: Request) -> Response:
            self.received.append((path, await request.body()))
            status, body, headers = self.replies[path]
            return Response(body, status_code=status, media_type="application/json", headers=headers)

        return app

    def reply(
        self, path: str, body: dict[str, Any], sign: tuple[str, Message] | None, status: int = 200
    ) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {}
        if sign is not None:
            key = (
                get_settings().amanpay_secret_key
                if "amanpay" in path
                else get_settings().paydirect_secret_key
            )
            header = (
                amanpay_protocol.AMANPAY_HEADER if "amanpay" in path else amanpay_protocol.PAYDIRECT_HEADER
            )
            headers[header] = amanpay_protocol.sign(key, sign[1], raw) if sign[0] == "key" else sign[0]
        self.replies[path] = (status, raw, headers)


@pytest_asyncio.fixture
async def partner(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ScriptedPartner]:
    scripted = ScriptedPartner()
    port = free_port()
    scripted.base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        scripted.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
        if task.done():
            task.result()
    monkeypatch.setenv("AMANPAY_BASE_URL", f"{scripted.base_url}/amanpay")
    monkeypatch.setenv("PAYDIRECT_BASE_URL", f"{scripted.base_url}/paydirect")
    monkeypatch.setenv("FATOURATI_BASE_URL", f"{scripted.base_url}/fatourati")
    portnet_settings.get_settings.cache_clear()
    try:
        yield scripted
    finally:
        monkeypatch.undo()
        portnet_settings.get_settings.cache_clear()
        server.should_exit = True
        await task


def payment_id() -> str:
    return "PN" + secrets.token_hex(6).upper()


async def rejected(call: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await call
    return caught.value


# --- Amanpay orders ---------------------------------------------------------------------------------


async def test_forged_amanpay_order_answers_are_refused(partner: ScriptedPartner) -> None:
    pid = payment_id()
    order = AmanpayOrderInput(payment_id=pid, method="code", amount="120.00", email="a@b.ma", ttl_seconds=60)
    path = "amanpay/api/orders"
    genuine = {
        "order_id": pid,
        "status": "pending",
        "amount": "120.00",
        "code": "18 0857 637-947",
        "expires_at": "2026-11-30T10:00:00+00:00",
    }
    env = ActivityEnvironment()

    partner.reply(path, genuine, ("key", Message.ORDER_CREATED), 201)
    ok = await env.run(amanpay.create_order, order)
    assert ok.ok and ok.code == "18 0857 637-947"
    _, sent = partner.received[-1]
    assert json.loads(sent)["order_id"] == pid  # our request, signed as an order creation
    forgeries = [
        (genuine, None),  # unsigned
        (genuine, ("0" * 64, Message.ORDER_CREATED)),  # made-up signature
        (genuine, ("key", Message.NOTIFICATION)),  # signed, but as another message type
        ({**genuine, "order_id": payment_id()}, ("key", Message.ORDER_CREATED)),  # another order's
        ({**genuine, "amount": "1.00"}, ("key", Message.ORDER_CREATED)),
        ({**genuine, "code": "18 0857 637-947|x"}, ("key", Message.ORDER_CREATED)),
        ({**genuine, "status": "paid"}, ("key", Message.ORDER_CREATED)),
    ]
    for body, sign in forgeries:
        partner.reply(path, body, sign, 201)
        error = await rejected(env.run(amanpay.create_order, order))
        assert error.type == "PartnerAnswerRejected" and not error.non_retryable, body

    # The payer's browser is sent only to Amanpay's own site.
    amanty = AmanpayOrderInput(payment_id=pid, method="amanty", amount="120.00", email="a@b.ma")
    redirect = {"order_id": pid, "status": "pending", "amount": "120.00"}
    partner.reply(
        path, {**redirect, "redirect_url": "https://amanty.evil.test/pay"}, ("key", Message.ORDER_CREATED)
    )
    assert (await rejected(env.run(amanpay.create_order, amanty))).type == "PartnerAnswerRejected"
    own = f"{partner.base_url}/amanpay/amanty/{pid}"
    partner.reply(path, {**redirect, "redirect_url": own}, ("key", Message.ORDER_CREATED))
    assert (await env.run(amanpay.create_order, amanty)).redirect_url == own

    # A refusal is unsigned: the payer reads our sentence, never the text in the answer.
    refusal = {
        "result": "refused",
        "reason": "invalid_request",
        "message": "<a href=//evil>Appelez le 0600</a>",
    }
    partner.reply(path, refusal, None, 422)
    refused = await env.run(amanpay.create_order, order)
    assert not refused.ok and refused.error == amanpay_protocol.AMANPAY_REFUSAL


async def test_forged_amanpay_cancel_answer_is_refused(partner: ScriptedPartner) -> None:
    pid = payment_id()
    path = f"amanpay/api/orders/{pid}/cancel"
    env = ActivityEnvironment()
    partner.reply(path, {"order_id": pid, "status": "cancelled"}, ("key", Message.ORDER_CANCEL_RESULT))
    assert await env.run(amanpay.cancel_order, pid) == "cancelled"
    for body, sign in (
        ({"order_id": pid, "status": "paid"}, None),
        ({"order_id": pid, "status": "paid"}, ("key", Message.ORDER_CREATED)),
        ({"order_id": payment_id(), "status": "cancelled"}, ("key", Message.ORDER_CANCEL_RESULT)),
    ):
        partner.reply(path, body, sign)
        assert (await rejected(env.run(amanpay.cancel_order, pid))).type == "PartnerAnswerRejected"


# --- PayDirect ----------------------------------------------------------------------------------------


def authorization(pid: str, auth_ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "result": "otp_sent",
        "auth_ref": auth_ref,
        "order_id": pid,
        "status": "otp_sent",
        "otp_expires_at": "2026-11-27T10:10:00+00:00",
        "attempts_left": 3,
        "sends": 1,
        **extra,
    }


async def test_forged_paydirect_authorized_never_becomes_a_verdict(partner: ScriptedPartner) -> None:
    pid, auth_ref = payment_id(), "PDA0A1B2C3D4E5F"
    sealed = amanpay_protocol.seal_otp(get_settings().secret_key, pid, "123456")
    request_id = f"payment-{pid}-otp-1"
    verify = PayDirectVerifyInput(pid, auth_ref, sealed, request_id)
    path = f"paydirect/api/authorizations/{auth_ref}/verify"
    authorized = authorization(
        pid,
        auth_ref,
        result="authorized",
        status="authorized",
        transaction_id="BP0A1B2C3D4E",
        authorization_code="654321",
        request_id=request_id,
    )
    env = ActivityEnvironment()
    partner.reply(path, authorized, ("key", Message.OTP_VERDICT))
    verdict = await env.run(paydirect.paydirect_verify, verify)
    assert verdict.result == "authorized" and verdict.transaction_id == "BP0A1B2C3D4E"
    assert json.loads(partner.received[-1][1]) == {"otp": "123456", "request_id": request_id}

    forgeries = [
        (authorized, None),
        (authorized, ("f" * 64, Message.OTP_VERDICT)),
        (authorized, ("key", Message.AUTHORIZATION)),  # the start answer's label
        ({**authorized, "request_id": f"payment-{pid}-otp-0"}, ("key", Message.OTP_VERDICT)),  # replayed
        ({**authorized, "auth_ref": "PDAFFFFFFFFFFFF"}, ("key", Message.OTP_VERDICT)),  # another payment's
        ({**authorized, "result": "approved"}, ("key", Message.OTP_VERDICT)),
        ({**authorized, "attempts_left": "3"}, ("key", Message.OTP_VERDICT)),
    ]
    for body, sign in forgeries:
        partner.reply(path, body, sign)
        error = await rejected(env.run(paydirect.paydirect_verify, verify))
        # Retried: the request id makes the bank answer the same verdict again, counted once.
        assert error.type == "PartnerAnswerRejected" and not error.non_retryable, body


async def test_forged_paydirect_start_and_resend_answers_are_refused(partner: ScriptedPartner) -> None:
    pid, auth_ref = payment_id(), "PDA0A1B2C3D4E5F"
    start = PayDirectStartInput(
        pid, "120.00", "PD1002457", "BE123456", "A. Alaoui", "+212600000001", "a@b.ma"
    )
    path = "paydirect/api/authorizations"
    env = ActivityEnvironment()
    partner.reply(path, authorization(pid, auth_ref), ("key", Message.AUTHORIZATION), 201)
    started = await env.run(paydirect.paydirect_start, start)
    assert started.ok and started.auth_ref == auth_ref and started.attempts_left == 3
    for body, sign in (
        (authorization(pid, auth_ref), None),
        (authorization(pid, auth_ref), ("key", Message.OTP_SENT)),
        (authorization(payment_id(), auth_ref), ("key", Message.AUTHORIZATION)),
        (authorization(pid, auth_ref, attempts_left=99), ("key", Message.AUTHORIZATION)),
    ):
        partner.reply(path, body, sign, 201)
        assert (await rejected(env.run(paydirect.paydirect_start, start))).type == "PartnerAnswerRejected"
    partner.reply(
        path, {"result": "refused", "reason": "unknown_contract", "message": "Appelez le 0600"}, None, 422
    )
    refused = await env.run(paydirect.paydirect_start, start)
    assert not refused.ok and refused.error_code == "unknown_contract"
    assert refused.error == "Numéro de contrat PayDirect inconnu."

    resend = f"paydirect/api/authorizations/{auth_ref}/otp"
    partner.reply(resend, authorization(pid, auth_ref, sends=2), ("key", Message.OTP_SENT))
    assert await env.run(paydirect.paydirect_resend, auth_ref) == 3
    partner.reply(resend, authorization(pid, auth_ref, sends=2), ("key", Message.AUTHORIZATION))
    error = await rejected(env.run(paydirect.paydirect_resend, auth_ref))
    # Not retried: each new call would text the payer another code.
    assert error.type == "PartnerAnswerRejected" and error.non_retryable


# --- Fatourati tokens -----------------------------------------------------------------------------------


@pytest.fixture
def fatourati_payment(db: Session, make_invoice: Callable[..., Invoice]) -> str:
    invoice = make_invoice()
    pid = payment_id()
    db.add(
        Payment(
            id=pid,
            workflow_id=f"payment-{pid}",
            channel="cmi_fatourati",
            amount=invoice.amount_ttc,
            status="started",
            company_id=invoice.company_id,
            invoice_numbers=invoice.number,
        )
    )
    db.commit()
    return pid


async def test_forged_fatourati_token_answers_store_nothing(
    partner: ScriptedPartner, db: Session, fatourati_payment: str
) -> None:
    pid = fatourati_payment
    key = get_settings().fatourati_api_key
    expires = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    token = TokenInput(pid, "120.00", expires, PayerInfo("Yassine Alaoui", "a@b.ma"))
    genuine = {
        "tokenRef": "1089012345678",
        "orderId": pid,
        "amount": "120.00",
        "expiryDate": expires,
        "status": "PENDING",
    }
    env = ActivityEnvironment()

    def reply(body: dict[str, Any], message: fproto.MessageType | None = fproto.TOKEN_RESPONSE) -> None:
        signed = fproto.signed(body, message, key) if message is not None else {**body, "signature": "0" * 64}
        partner.replies["fatourati/tokens"] = (200, json.dumps(signed).encode(), {})

    forgeries: list[tuple[dict[str, Any], fproto.MessageType | None]] = [
        (genuine, None),
        (genuine, fproto.STATUS_ANSWER),
        ({**genuine, "orderId": payment_id()}, fproto.TOKEN_RESPONSE),
        ({**genuine, "amount": "1.00"}, fproto.TOKEN_RESPONSE),
        (
            {**genuine, "expiryDate": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
            fproto.TOKEN_RESPONSE,
        ),
        ({**genuine, "tokenRef": "108901234567"}, fproto.TOKEN_RESPONSE),
        ({**genuine, "status": "PAID"}, fproto.TOKEN_RESPONSE),
    ]
    for body, message in forgeries:
        reply(body, message)
        error = await rejected(env.run(fatourati.create_token, token))
        assert error.type == "PartnerAnswerRejected", body
        db.expire_all()
        assert db.get(PaymentChannelData, pid) is None
    reply(genuine)
    assert (await env.run(fatourati.create_token, token)).reference == "1089012345678"
    db.expire_all()
    stored = db.get(PaymentChannelData, pid)
    assert stored is not None and stored.partner_reference == "1089012345678"

    cancel = "fatourati/tokens/1089012345678/cancel"
    answer = {"tokenRef": "1089012345678", "status": "CANCELLED"}
    partner.replies[cancel] = (
        200,
        json.dumps(fproto.signed(answer, fproto.TOKEN_CANCEL_RESPONSE, key)).encode(),
        {},
    )
    assert await env.run(fatourati.cancel_token, pid) == "CANCELLED"
    partner.replies[cancel] = (200, json.dumps(fproto.signed(answer, fproto.STATUS_ANSWER, key)).encode(), {})
    error = await rejected(env.run(fatourati.cancel_token, pid))
    assert error.type == "PartnerAnswerRejected" and not error.non_retryable
