"""The emitter sandbox: signed notices in, idempotence, signed acknowledgements out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx

from portnet.settings import Settings
from sandbox.context import Sandbox
from tests.support.sandbox import RECEIVER, Receiver, assert_french_page


def notice(notice_id: str = "NOT-2026-0001", **changes: Any) -> dict[str, Any]:
    return {
        "notice_id": notice_id,
        "payment_id": "PAY-77",
        "invoices": [
            {"number": "ANP-F-1001", "amount_ttc": "1200.00"},
            {"number": "ANP-F-1002", "amount_ttc": "2400.00"},
        ],
        "amount": "3600.00",
        "transaction_id": "26001ABCD00001",
        "paid_at": "2026-01-05T10:15:00+01:00",
        "ack_url": f"{RECEIVER}/emitters/ack",
        **changes,
    }


def signed(body: dict[str, Any], key: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = hmac.new(key.encode(), b"EMITTER_SETTLEMENT_NOTICE\n" + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-PortNet-Signature": signature}


async def post_notice(client: httpx.AsyncClient, settings: Settings, body: dict[str, Any], code: str = "ANP"):
    raw, headers = signed(body, settings.emitter_shared_key)
    return await client.post(f"/emitters/{code}/settlements", content=raw, headers=headers)


async def test_signature_is_required(client: httpx.AsyncClient, settings: Settings) -> None:
    raw, headers = signed(notice(), settings.emitter_shared_key)
    assert (await client.post("/emitters/ANP/settlements", content=raw)).status_code == 401
    tampered = raw.replace(b"3600.00", b"36.00")
    assert (
        await client.post("/emitters/ANP/settlements", content=tampered, headers=headers)
    ).status_code == 401
    _, wrong = signed(notice(), "another key")
    assert (await client.post("/emitters/ANP/settlements", content=raw, headers=wrong)).status_code == 401


async def test_notice_is_acknowledged_with_a_signed_call(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    reply = await post_notice(client, settings, notice())
    assert reply.status_code == 202
    receipt = reply.json()
    assert receipt["notice_id"] == "NOT-2026-0001" and receipt["status"] == "received"
    assert receipt["emitter_ack_id"]

    await handle.background.wait_idle()
    [(body, headers)] = receiver.acks
    expected = hmac.new(
        settings.emitter_shared_key.encode(), b"EMITTER_ACK\n" + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-portnet-signature"] == expected
    ack = json.loads(body)
    assert ack["notice_id"] == "NOT-2026-0001"
    assert ack["emitter_code"] == "ANP"
    assert ack["emitter_ack_id"] == receipt["emitter_ack_id"]
    assert ack["acknowledged_at"]

    again = await post_notice(client, settings, notice())
    assert again.status_code == 200
    assert again.json()["emitter_ack_id"] == receipt["emitter_ack_id"]
    assert again.json()["status"] == "acknowledged"
    await handle.background.wait_idle()
    assert len(receiver.acks) == 1


async def test_paused_ack_is_sent_by_hand(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    assert (await client.post("/emitters/auto-ack", data={"enabled": "0"})).status_code == 303
    await post_notice(client, settings, notice(), code="MARSA_MAROC")
    await handle.background.wait_idle()
    assert receiver.acks == []
    page = await client.get("/emitters/")
    assert "NOT-2026-0001" in page.text and "MARSA MAROC" in page.text

    reply = await client.post("/emitters/MARSA_MAROC/settlements/NOT-2026-0001/ack")
    assert reply.status_code == 200
    assert reply.json()["ack_state"] == "delivered"
    assert len(receiver.acks) == 1
    # The page's button (a form post) lands back on the page.
    button = await client.post("/emitters/MARSA_MAROC/settlements/NOT-2026-0001/ack", data={"from": "page"})
    assert button.status_code == 303
    first, second = receiver.acks
    assert first[0] == second[0]  # a re-sent ack is the same signed document
    assert (await client.post("/emitters/ANP/settlements/NOT-2026-0001/ack")).status_code == 404


async def test_ack_is_retried_on_outage(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    receiver.ack_statuses = [503, 500, 200]
    await post_notice(client, settings, notice())
    await handle.background.wait_idle()
    assert len(receiver.acks) == 3
    assert len({body for body, _ in receiver.acks}) == 1
    state = (await client.get("/emitters/ANP/settlements/NOT-2026-0001")).json()
    assert state["ack_state"] == "delivered"
    assert [t["status_code"] for t in state["ack_tries"]] == [503, 500, 200]


async def test_ack_refused_by_the_platform_is_not_retried(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    receiver.ack_statuses = [401]
    await post_notice(client, settings, notice())
    await handle.background.wait_idle()
    assert len(receiver.acks) == 1
    state = (await client.get("/emitters/ANP/settlements/NOT-2026-0001")).json()
    assert state["ack_state"] == "refused"


async def test_ack_waits_for_the_configured_delay(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    handle.tuning.emitter_ack_delay_seconds = 0.2
    await post_notice(client, settings, notice())
    await asyncio.sleep(0.05)
    assert receiver.acks == []
    await handle.background.wait_idle()
    assert len(receiver.acks) == 1


async def test_invalid_notice_is_rejected(client: httpx.AsyncClient, settings: Settings) -> None:
    reply = await post_notice(client, settings, notice(ack_url="ftp://x"))
    assert reply.status_code == 422
    body = notice()
    del body["invoices"]
    assert (await post_notice(client, settings, body)).status_code == 422


async def test_empty_notices_page_renders(client: httpx.AsyncClient) -> None:
    assert_french_page(await client.get("/emitters/"), "Aucun avis reçu")


async def test_auto_ack_toggle(client: httpx.AsyncClient) -> None:
    reply = await client.post("/emitters/auto-ack", data={"enabled": "0"})
    assert reply.status_code == 303
    assert "suspendu" in (await client.get("/emitters/")).text
    await client.post("/emitters/auto-ack", data={"enabled": "1"})
    assert "actif" in (await client.get("/emitters/")).text
