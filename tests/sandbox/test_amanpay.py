"""The Amanpay sandbox's merchant API: orders created once, checked before signed, answers signed."""

from __future__ import annotations

import re

import httpx

from portnet.settings import Settings
from tests.support.sandbox import (
    AMANPAY_HEADER,
    Message,
    amanpay_order,
    answer_verifies,
    signed_json,
    status_headers,
)

CODE = re.compile(r"18 \d{4} \d{3}-\d{3}")


async def test_code_order_is_created_once_and_signed(client: httpx.AsyncClient, settings: Settings) -> None:
    first = await amanpay_order(client, settings, "PN00000000A001")
    assert first.status_code == 201, first.text
    assert answer_verifies(first, settings.amanpay_secret_key, Message.ORDER_CREATED, AMANPAY_HEADER)
    body = first.json()
    assert body["status"] == "pending" and body["amount"] == "1920.00"
    assert CODE.fullmatch(body["code"]) and body["expires_at"]
    # Another message type's label does not verify the same answer.
    assert not answer_verifies(
        first, settings.amanpay_secret_key, Message.ORDER_STATUS_RESULT, AMANPAY_HEADER
    )
    again = await amanpay_order(client, settings, "PN00000000A001")
    assert again.status_code == 200 and again.json()["code"] == body["code"]


async def test_amanty_order_sends_the_payer_to_the_wallet_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    reply = await amanpay_order(client, settings, "PN00000000A002", method="amanty")
    assert reply.status_code == 201
    url = reply.json()["redirect_url"]
    assert url.endswith("/sandbox/amanpay/amanty/PN00000000A002") and "code" not in reply.json()


async def test_requests_are_checked_before_their_signature_and_refusals_are_unsigned(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    key = settings.amanpay_secret_key
    unreadable = await client.post(
        "/amanpay/api/orders", content=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert unreadable.status_code == 400
    other_merchant = await amanpay_order(client, settings, "PN00000000A003", merchant_id="SOMEONE")
    assert other_merchant.status_code == 403
    for amount in ("12.345", "-1.00", "0", "NaN", "Infinity", "douze"):
        bad = await amanpay_order(client, settings, "PN00000000A003", amount=amount)
        assert bad.status_code == 422, amount
    assert (await amanpay_order(client, settings, "PN00000000A003", method="cheque")).status_code == 422
    raw, headers = signed_json(
        {
            "merchant_id": settings.amanpay_merchant_id,
            "order_id": "PN00000000A003",
            "amount": "1.00",
            "method": "code",
        },
        "another key",
        Message.ORDER_CREATE,
        AMANPAY_HEADER,
    )
    forged = await client.post("/amanpay/api/orders", content=raw, headers=headers)
    assert forged.status_code == 401
    for refusal in (unreadable, other_merchant, forged):
        assert AMANPAY_HEADER.lower() not in refusal.headers
        assert refusal.json()["result"] == "refused"
    # Signed with the order-creation label, a cancel is refused: labels are per message type.
    _, wrong_label = signed_json({}, key, Message.ORDER_CREATE, AMANPAY_HEADER)
    reply = await client.post("/amanpay/api/orders/PN00000000A003/cancel", content=b"{}", headers=wrong_label)
    assert reply.status_code == 401


async def test_status_and_cancel_are_signed_both_ways(client: httpx.AsyncClient, settings: Settings) -> None:
    key = settings.amanpay_secret_key
    await amanpay_order(client, settings, "PN00000000A004")
    signature = status_headers(key, "PN00000000A004")
    status = await client.get("/amanpay/api/orders/PN00000000A004", headers=signature)
    assert status.status_code == 200 and status.json()["status"] == "pending"
    assert answer_verifies(status, key, Message.ORDER_STATUS_RESULT, AMANPAY_HEADER)
    assert (await client.get("/amanpay/api/orders/PN00000000A004")).status_code == 401

    raw, headers = signed_json({"order_id": "PN00000000A004"}, key, Message.ORDER_CANCEL, AMANPAY_HEADER)
    cancelled = await client.post("/amanpay/api/orders/PN00000000A004/cancel", content=raw, headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert answer_verifies(cancelled, key, Message.ORDER_CANCEL_RESULT, AMANPAY_HEADER)
    assert (await client.get("/amanpay/api/orders/PN00000000A004", headers=signature)).json()[
        "status"
    ] == "cancelled"
    unknown = await client.post("/amanpay/api/orders/PN00000000A999/cancel", content=raw, headers=headers)
    assert unknown.status_code == 404


async def test_index_lists_orders_wallets_and_contracts(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await amanpay_order(client, settings, "PN00000000A005")
    page = await client.get("/amanpay")
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert "PN00000000A005" in page.text and "Code de paiement" in page.text
    assert "amanty.sataa@demo.ma" in page.text and "250\u202f000,00 MAD" in page.text
    assert "PD1002457" in page.text and 'href="/sandbox/tashilat"' in page.text
