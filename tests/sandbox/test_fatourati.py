"""The Fatourati sandbox: signed token life, CMI's refusals, the signed callback it sends us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from portnet.protocols import fatourati as proto
from portnet.settings import Settings
from sandbox import fatourati as sandbox_fatourati
from sandbox.context import Sandbox
from tests.support.sandbox import token_request


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def merchant(received: list[dict[str, Any]], api_key: str, sign_answers: bool = True) -> FastAPI:
    """Plays our platform: answers each callback ACCEPTED, signed (or not, to see CMI insist)."""
    app = FastAPI()

    @app.post("/callback")
    async def callback(request: Request) -> JSONResponse:
        body = await request.json()
        received.append(body)
        answer: dict[str, object] = {
            "tokenRef": body["tokenRef"],
            "orderId": body["orderId"],
            "transactionNumber": body["transactionNumber"],
            "receiptNumber": "REC-TEST",
            "status": "ACCEPTED",
        }
        if sign_answers:
            answer = proto.signed(answer, proto.CALLBACK_ANSWER, api_key)
        return JSONResponse(answer)

    return app


async def setup(
    sandbox: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> tuple[Clock, list[dict[str, Any]], str]:
    clock = Clock()
    received: list[dict[str, Any]] = []
    sandbox.clock = clock
    sandbox.outbound.transport = httpx.ASGITransport(app=merchant(received, settings.fatourati_api_key))
    reply = await client.post(
        "/fatourati/api/tokens", json=token_request(settings, "PN0001", clock.now + timedelta(hours=3))
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert proto.verify(body, proto.TOKEN_RESPONSE, settings.fatourati_api_key)
    assert len(body["tokenRef"]) == 13 and body["tokenRef"].isdigit()
    return clock, received, body["tokenRef"]


async def test_token_is_idempotent_and_badly_signed_requests_are_refused(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    clock, _, ref = await setup(handle, client, settings)
    again = await client.post(
        "/fatourati/api/tokens", json=token_request(settings, "PN0001", clock.now + timedelta(hours=3))
    )
    assert again.json()["tokenRef"] == ref
    forged = token_request(settings, "PN0002", clock.now + timedelta(hours=3))
    forged["amount"] = "1.00"  # signature no longer matches
    assert (await client.post("/fatourati/api/tokens", json=forged)).status_code == 401
    bad_items = token_request(settings, "PN0003", clock.now + timedelta(hours=3), amount="3000.00")
    assert (await client.post("/fatourati/api/tokens", json=bad_items)).status_code == 422


async def test_payment_at_2h59m59s_is_taken_and_calls_back_signed(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    clock, received, ref = await setup(handle, client, settings)
    clock.now += timedelta(hours=2, minutes=59, seconds=59)
    result = (await client.post("/fatourati/payments", json={"reference": ref, "channel": "cih"})).json()
    assert result["result"] == "paid" and result["merchant_answer"]["receiptNumber"] == "REC-TEST"
    assert len(received) == 1
    callback = received[0]
    assert proto.verify(callback, proto.CALLBACK, settings.fatourati_api_key)
    assert (
        callback["decisionCode"] == "0"
        and callback["totalAmount"] == "3600.00"
        and callback["orderId"] == "PN0001"
    )
    status = (await client.get(f"/fatourati/api/tokens/{ref}")).json()
    assert status["status"] == "PAID"


async def test_payment_at_3h00m01s_is_refused_without_callback(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    clock, received, ref = await setup(handle, client, settings)
    clock.now += timedelta(hours=3, seconds=1)
    result = (await client.post("/fatourati/payments", json={"reference": ref, "channel": "cih"})).json()
    assert result["result"] == "refused" and "expirée" in result["reason"]
    assert received == []


async def test_cancelled_reference_and_amount_asking_channels(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, received, ref = await setup(handle, client, settings)
    wrong = (
        await client.post("/fatourati/payments", json={"reference": ref, "amount": "3500", "channel": "bmce"})
    ).json()
    assert wrong["result"] == "refused"
    cancel = {
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "tokenRef": ref,
    }
    forged = {**cancel, "signature": "00"}
    assert (await client.post(f"/fatourati/api/tokens/{ref}/cancel", json=forged)).status_code == 401
    reply = await client.post(
        f"/fatourati/api/tokens/{ref}/cancel",
        json=proto.signed(cancel, proto.TOKEN_CANCEL, settings.fatourati_api_key),
    )
    assert reply.json()["status"] == "CANCELLED"
    result = (
        await client.post(
            "/fatourati/payments", json={"reference": ref, "amount": "3600,00", "channel": "bmce"}
        )
    ).json()
    assert result["result"] == "refused" and received == []


async def test_channel_page_in_french(handle: Sandbox, client: httpx.AsyncClient, settings: Settings) -> None:
    _, received, ref = await setup(handle, client, settings)
    index = await client.get("/fatourati/")
    for name in ("AttijariNet / Attijari Mobile", "CIH Online", "CashPlus", "DamanePay / DamanCash"):
        assert name in index.text
    page = await client.get("/fatourati/canal/baridbank")
    assert page.status_code == 200 and 'name="amount"' in page.text
    paid = await client.post("/fatourati/canal/baridbank", data={"reference": ref, "amount": "3600.00"})
    assert "Paiement effectué" in paid.text and "REC-TEST" in paid.text and len(received) == 1


async def test_merchant_answer_is_verified_status_included(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    """CMI checks our answer's signature, which covers the status: an unsigned answer is no answer."""
    _, received, ref = await setup(handle, client, settings)
    handle.outbound.transport = httpx.ASGITransport(
        app=merchant(received, settings.fatourati_api_key, sign_answers=False)
    )
    result = (await client.post("/fatourati/payments", json={"reference": ref, "channel": "cih"})).json()
    assert result["result"] == "paid" and result["merchant_status"] == 200
    assert len(received) == 3  # tried again, as after a server error
    status = (await client.get(f"/fatourati/api/tokens/{ref}")).json()
    assert status["payments"][0]["merchant_answer_verified"] is False

    genuine = {
        "tokenRef": ref,
        "orderId": "PN0001",
        "transactionNumber": "FTR1",
        "receiptNumber": "",
        "status": "RECORDED",
    }
    signed = proto.signed(genuine, proto.CALLBACK_ANSWER, settings.fatourati_api_key)
    assert sandbox_fatourati.answer_verified(signed, genuine, settings.fatourati_api_key)
    flipped = {**signed, "status": "ACCEPTED"}
    assert not sandbox_fatourati.answer_verified(flipped, genuine, settings.fatourati_api_key)
    other = {**genuine, "transactionNumber": "FTR2"}
    assert not sandbox_fatourati.answer_verified(signed, other, settings.fatourati_api_key)


async def test_token_answers_are_signed_per_message_type(
    handle: Sandbox, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, _, ref = await setup(handle, client, settings)
    cancel = {
        "merchantCode": settings.fatourati_merchant_code,
        "storeId": settings.fatourati_store_id,
        "tokenRef": ref,
    }
    reply = await client.post(
        f"/fatourati/api/tokens/{ref}/cancel",
        json=proto.signed(cancel, proto.TOKEN_CANCEL, settings.fatourati_api_key),
    )
    body = reply.json()
    assert proto.verify(body, proto.TOKEN_CANCEL_RESPONSE, settings.fatourati_api_key)
    # The same fields signed for another message type do not verify.
    assert not proto.verify(body, proto.STATUS_ANSWER, settings.fatourati_api_key)
    # A field holding the separator is refused before its signature is looked at.
    packed = {**cancel, "storeId": f"{settings.fatourati_store_id}|x"}
    assert (
        await client.post(f"/fatourati/api/tokens/{ref}/cancel", json={**packed, "signature": "0" * 64})
    ).status_code == 400
