"""The Amanty wallet page: sign in, see the balance, pay or be refused for it, or go back."""

from __future__ import annotations

import json

import httpx

from portnet.settings import Settings
from tests.support.sandbox import RECEIVER, Receiver, amanpay_order

SATAA = {"login": "amanty.sataa@demo.ma", "password": "Amanty2026!"}
PETIT = {"login": "amanty.petit@demo.ma", "password": "Amanty2026!"}


async def wallet_order(client: httpx.AsyncClient, settings: Settings, order_id: str) -> str:
    reply = await amanpay_order(client, settings, order_id, method="amanty")
    assert reply.status_code == 201, reply.text
    return f"/amanpay/amanty/{order_id}"


async def test_wallet_pays_and_stays_debited(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    page = await wallet_order(client, settings, "PN00000000W001")
    login = await client.get(page)
    assert (
        login.status_code == 200 and "Identifiant Amanty" in login.text and "1\u202f920,00 MAD" in login.text
    )
    wrong = await client.post(page, data={**SATAA, "password": "nope", "action": "login"})
    assert wrong.status_code == 401 and "incorrect" in wrong.text
    confirm = await client.post(page, data={**SATAA, "action": "login"})
    assert confirm.status_code == 200 and "250\u202f000,00 MAD" in confirm.text
    paid = await client.post(page, data={**SATAA, "action": "confirm"})
    assert paid.status_code == 303 and paid.headers["location"] == f"{RECEIVER}/paiements/PN00000000W001"
    [(body, _)] = receiver.notifications
    event = json.loads(body)
    assert (
        event["status"] == "paid"
        and event["wallet"] == "amanty.sataa@demo.ma"
        and event["channel"] == "amanty"
    )
    assert event["transaction_id"].startswith("AMT")
    assert "248\u202f080,00 MAD" in (await client.get("/amanpay")).text
    done = await client.post(page, data={**SATAA, "action": "confirm"})
    assert done.status_code == 200 and "paid" in done.text and len(receiver.notifications) == 1


async def test_too_small_a_balance_is_refused_and_another_wallet_may_pay(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    page = await wallet_order(client, settings, "PN00000000W002")
    refused = await client.post(page, data={**PETIT, "action": "confirm"})
    assert refused.status_code == 402 and "Solde Amanty insuffisant" in refused.text
    [(body, _)] = receiver.notifications
    event = json.loads(body)
    assert event["status"] == "refused" and event["reason"] == "insufficient_balance"
    assert "50,00 MAD" in (await client.get("/amanpay")).text  # nothing taken
    assert (await client.post(page, data={**SATAA, "action": "confirm"})).status_code == 303
    assert [json.loads(b)["status"] for b, _ in receiver.notifications] == ["refused", "paid"]


async def test_cancel_goes_back_to_the_merchant(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    page = await wallet_order(client, settings, "PN00000000W003")
    back = await client.post(page, data={"action": "cancel"})
    assert back.status_code == 303 and back.headers["location"].endswith("/paiements/PN00000000W003")
    assert [json.loads(b)["status"] for b, _ in receiver.notifications] == ["cancelled"]
    assert (await client.post(page, data={"action": "cancel"})).status_code == 303
    assert len(receiver.notifications) == 1


async def test_unknown_or_cash_code_order_has_no_wallet_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await client.get("/amanpay/amanty/PN00000000W999")).status_code == 404
    await amanpay_order(client, settings, "PN00000000W004", method="code")
    assert (await client.get("/amanpay/amanty/PN00000000W004")).status_code == 404
    assert (await client.post("/amanpay/amanty/PN00000000W004", data={**SATAA})).status_code == 404
