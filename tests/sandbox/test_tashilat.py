"""The Tashilat counter: a cash code paid once, at its amount, before it expires; Amanpay tells us."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from portnet.settings import Settings
from sandbox.context import Sandbox
from tests.support.sandbox import Receiver, amanpay_order, notification_verifies, status_headers


async def cash_code(client: httpx.AsyncClient, settings: Settings, order_id: str) -> str:
    reply = await amanpay_order(client, settings, order_id, amount="1920.00")
    assert reply.status_code == 201, reply.text
    code: str = reply.json()["code"]
    return code


async def counter(client: httpx.AsyncClient, code: str, amount: str, **extra: object) -> dict[str, str]:
    reply = await client.post("/tashilat/payments", json={"code": code, "amount": amount, **extra})
    assert reply.status_code == 200
    body: dict[str, str] = reply.json()
    return body


async def test_paid_code_is_notified_signed(
    client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    code = await cash_code(client, settings, "PN00000000T001")
    paid = await counter(client, code.replace(" ", "").replace("-", ""), "1920")  # typed without the spaces
    assert paid["result"] == "paid" and paid["transaction_id"].startswith("TSH")
    [(body, headers)] = receiver.notifications
    assert notification_verifies(settings.amanpay_secret_key, body, headers)
    event = json.loads(body)
    assert (
        event["order_id"] == "PN00000000T001" and event["status"] == "paid" and event["amount"] == "1920.00"
    )
    assert event["transaction_id"] == paid["transaction_id"] and event["channel"] == "tashilat"
    assert event["event_id"] == "PN00000000T001-paid"
    status = await client.get(
        "/amanpay/api/orders/PN00000000T001",
        headers=status_headers(settings.amanpay_secret_key, "PN00000000T001"),
    )
    assert status.json()["status"] == "paid"


async def test_refusals(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    code = await cash_code(client, settings, "PN00000000T002")
    assert (await counter(client, "18 0000 000-000", "1920.00"))["reason"] == "unknown"
    assert (await counter(client, code, "1900.00"))["reason"] == "wrong_amount"
    assert (await counter(client, code, "beaucoup"))["reason"] == "wrong_amount"
    assert (await counter(client, code, "1920.00"))["result"] == "paid"
    again = await counter(client, code, "1920.00")
    assert again["reason"] == "already_paid" and again["message"] == "Ce code a déjà été payé."
    assert len(receiver.notifications) == 1

    late = await cash_code(client, settings, "PN00000000T003")
    later = handle.clock() + timedelta(seconds=settings.amanpay_code_ttl_seconds + 1)
    handle.clock = lambda: later
    assert (await counter(client, late, "1920.00"))["reason"] == "expired"
    assert len(receiver.notifications) == 1


async def test_late_notification_still_arrives(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    code = await cash_code(client, settings, "PN00000000T004")
    paid = await counter(client, code, "1920.00", notify_delay_seconds=0.05)
    assert paid["result"] == "paid" and receiver.notifications == []  # paid in time, told later
    await handle.background.wait_idle()
    assert [json.loads(body)["status"] for body, _ in receiver.notifications] == ["paid"]


async def test_notification_is_retried_until_the_merchant_takes_it(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    receiver.notification_statuses = [503, 500, 200]
    code = await cash_code(client, settings, "PN00000000T005")
    assert (await counter(client, code, "1920.00"))["result"] == "paid"
    await handle.background.wait_idle()
    assert len(receiver.notifications) == 3 and len({body for body, _ in receiver.notifications}) == 1
    page = (await client.get("/amanpay")).text
    assert "paid → 503" in page and "paid → 200" in page


async def test_counter_page(client: httpx.AsyncClient, settings: Settings) -> None:
    page = await client.get("/tashilat")
    assert (
        page.status_code == 200
        and "Agence Tashilat" in page.text
        and 'action="/sandbox/tashilat"' in page.text
    )
    code = await cash_code(client, settings, "PN00000000T006")
    wrong = await client.post("/tashilat", data={"code": code, "amount": "1", "notify_delay_seconds": "x"})
    assert "Paiement refusé" in wrong.text and "Le montant ne correspond pas" in wrong.text
    paid = await client.post("/tashilat", data={"code": code, "amount": "1920,00"})
    assert "Paiement encaissé" in paid.text and "PN00000000T006" in paid.text
