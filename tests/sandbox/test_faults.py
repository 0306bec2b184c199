"""Partner faults on demand: off by default, set per partner, kept in the store, shown on the index,
deterministic (a seed or "the next N calls"), and each kind does what a faulty partner does.

No test waits on a clock: slow answers and hangs go through ``Sandbox.pause`` (recorded here, or a
short client timeout), held-back callbacks are released through the admin API.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from portnet.settings import Settings
from sandbox.app import create_sandbox_app, running
from sandbox.context import Sandbox
from sandbox.mail import MailSink
from tests.support.sandbox import (
    Receiver,
    amanpay_order,
    assert_french_page,
    open_session,
    sandbox_client,
    status_headers,
    token_request,
)

VISA, DECLINED = "4000000000000010", "4242424242424242"


async def set_faults(client: httpx.AsyncClient, partner: str, **settings: Any) -> dict[str, Any]:
    reply = await client.put(f"/{partner}/admin/faults", json=settings)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def card(client: httpx.AsyncClient, oid: str, pan: str = VISA) -> dict[str, Any]:
    reply = await client.post(
        "/cmi/card-payments", json={"oid": oid, "pan": pan, "expiry": "12/40", "cvv": "000"}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture
def pauses(handle: Sandbox) -> list[float]:
    """Every wait an injected fault asks for, instead of the wait."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    handle.pause = record
    return recorded


async def test_off_by_default_and_shown_on_the_index(client: httpx.AsyncClient) -> None:
    partners = (await client.get("/faults")).json()["partners"]
    assert {p["partner"] for p in partners} == {
        "cmi",
        "fatourati",
        "amanpay",
        "paydirect",
        "sms",
        "mail",
        "emitters",
    }
    assert not any(p["active"] for p in partners)
    await set_faults(client, "fatourati", error_rate=0.3, drop_rate=0.1)
    page = await client.get("/")
    assert_french_page(page, "Pannes des partenaires")
    assert "30.0 %" in page.text and "10.0 %" in page.text
    assert (await client.delete("/fatourati/admin/faults")).json()["active"] is False


@pytest.mark.parametrize(
    "wanted, complaint",
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": 0.6, "timeout_rate": 0.6}, "ne peut dépasser 1"),
        ({"next": {"explode": 1}}, "panne forcée inconnue"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_settings_are_refused_in_french(
    client: httpx.AsyncClient, wanted: dict[str, Any], complaint: str
) -> None:
    reply = await client.put("/cmi/admin/faults", json=wanted)
    assert reply.status_code == 400 and complaint in reply.json()["message"]
    assert reply.json()["message"].startswith("Paramètres de panne invalides")
    assert (await client.get("/cmi/admin/faults")).json()["active"] is False


async def test_faults_survive_a_restart(settings: Settings, receiver: Receiver) -> None:
    first = create_sandbox_app(settings, mail_sink=False)
    async with running(first.state.sandbox, mail_sink=False), sandbox_client(first) as client:
        await set_faults(client, "amanpay", timeout_rate=0.25, seed=3)
    again = create_sandbox_app(settings, mail_sink=False)
    async with running(again.state.sandbox, mail_sink=False), sandbox_client(again) as client:
        kept = (await client.get("/amanpay/admin/faults")).json()
    assert kept["settings"]["timeout_rate"] == 0.25 and kept["settings"]["seed"] == 3


# --- the partners' APIs: 5xx, hangs, slow answers -----------------------------------------------

API_CALLS = [
    ("cmi", "POST", "/cmi/fim/api"),
    ("fatourati", "POST", "/fatourati/api/tokens"),
    ("amanpay", "POST", "/amanpay/api/orders"),
    ("paydirect", "POST", "/paydirect/authorizations"),
    ("sms", "POST", "/sms/messages"),
    ("emitters", "POST", "/emitters/6110DOO116/settlements"),
]


@pytest.mark.parametrize("partner, method, path", API_CALLS)
async def test_forced_server_error_on_every_partner_api(
    client: httpx.AsyncClient, partner: str, method: str, path: str
) -> None:
    await set_faults(client, partner, next={"error": 1}, error_status=502)
    faulty = await client.request(method, path, content=b"{}")
    assert faulty.status_code == 502 and faulty.headers["x-sandbox-fault"] == "error"
    assert faulty.json()["error"] == "unavailable"
    after = await client.request(method, path, content=b"{}")  # the partner's own answer again
    assert after.status_code != 502 and "x-sandbox-fault" not in after.headers
    state = (await client.get(f"/{partner}/admin/faults")).json()
    assert state["injected"] == {"error": 1} and state["settings"]["next"] == {"error": 0}


async def test_a_server_error_changes_nothing_at_the_partner(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await set_faults(client, "amanpay", next={"error": 1})
    assert (await amanpay_order(client, settings, "PN00000000F001")).status_code == 503
    headers = status_headers(settings.amanpay_secret_key, "PN00000000F001")
    assert (await client.get("/amanpay/api/orders/PN00000000F001", headers=headers)).status_code == 404
    assert (await amanpay_order(client, settings, "PN00000000F001")).status_code == 201


async def test_hang_outlasts_the_callers_timeout(client: httpx.AsyncClient, settings: Settings) -> None:
    await set_faults(client, "amanpay", next={"timeout": 1}, hang_seconds=600)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(amanpay_order(client, settings, "PN00000000F002"), timeout=0.2)
    assert (await amanpay_order(client, settings, "PN00000000F002")).status_code == 201


async def test_hang_ends_in_a_gateway_timeout_without_reaching_the_partner(
    client: httpx.AsyncClient, settings: Settings, pauses: list[float]
) -> None:
    await set_faults(client, "fatourati", next={"timeout": 1}, hang_seconds=45)
    from datetime import UTC, datetime, timedelta

    request = token_request(settings, "PN-F-003", datetime.now(UTC) + timedelta(days=1))
    reply = await client.post("/fatourati/api/tokens", json=request)
    assert reply.status_code == 504 and reply.headers["x-sandbox-fault"] == "timeout" and pauses == [45]


async def test_slow_answer_is_the_real_answer_late(
    client: httpx.AsyncClient, settings: Settings, pauses: list[float]
) -> None:
    await set_faults(client, "amanpay", next={"slow": 1}, slow_seconds=7.5)
    reply = await amanpay_order(client, settings, "PN00000000F004")
    assert reply.status_code == 201 and reply.json()["code"] and reply.headers["x-sandbox-fault"] == "slow"
    assert pauses == [7.5]


async def test_rates_are_deterministic_with_a_seed(client: httpx.AsyncClient, pauses: list[float]) -> None:
    async def run() -> list[str]:
        await set_faults(client, "cmi", error_rate=0.3, timeout_rate=0.1, slow_rate=0.1, seed=42)
        replies = [await client.post("/cmi/fim/api", content=b"<CC5Request/>") for _ in range(40)]
        return [r.headers.get("x-sandbox-fault", "-") for r in replies]

    first, second = await run(), await run()
    assert first == second
    assert 4 <= first.count("error") <= 22 and "-" in first  # about 30 %, not all, not none
    assert set(first) <= {"error", "timeout", "slow", "-"}


# --- the partners' calls to us: dropped, duplicated, out of order ------------------------------


async def test_dropped_callback_never_reaches_the_merchant(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    await set_faults(client, "cmi", next={"drop": 1})
    oid = await open_session(client, settings, "PN-F-010")
    paid = await card(client, oid)
    await handle.background.wait_idle()
    assert paid["result"] == "approved" and receiver.callbacks == []
    bank = (await client.get(f"/cmi/orders/{oid}")).json()["attempts"][0]
    assert bank["callback_state"] == "pending" and bank["captured"] is False
    other = await open_session(client, settings, "PN-F-011")
    await card(client, other)
    assert [c["oid"] for c in receiver.callbacks] == ["PN-F-011"]


async def test_duplicated_notification_arrives_twice(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    await set_faults(client, "amanpay", next={"duplicate": 1})
    code = (await amanpay_order(client, settings, "PN00000000F020")).json()["code"]
    paid = (await client.post("/tashilat/payments", json={"code": code, "amount": "1920.00"})).json()
    await handle.background.wait_idle()
    assert paid["result"] == "paid"
    bodies = [json.loads(body) for body, _ in receiver.notifications]
    assert len(bodies) == 2 and bodies[0] == bodies[1] and bodies[0]["status"] == "paid"


async def test_stale_redelivery_arrives_after_a_later_event(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    await set_faults(client, "cmi", next={"duplicate": 1}, duplicate_delay_seconds=3600)
    oid = await open_session(client, settings, "PN-F-030")
    declined = await card(client, oid, DECLINED)
    approved = await card(client, oid)
    assert (await client.post("/faults/release-held")).json() == {"released": 1}
    await handle.background.wait_idle()
    order = [c["TransId"] for c in receiver.callbacks]
    assert order == [declined["trans_id"], approved["trans_id"], declined["trans_id"]]


async def test_declined_callback_delivered_after_the_approval(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, receiver: Receiver
) -> None:
    await set_faults(client, "cmi", next={"reorder": 1}, reorder_hold_seconds=3600)
    oid = await open_session(client, settings, "PN-F-040")
    declined = await card(client, oid, DECLINED)
    assert declined["callback_state"] == "pending" and receiver.callbacks == []
    approved = await card(client, oid)
    assert approved["callback_answer"] == "ACTION=POSTAUTH"
    await client.post("/faults/release-held")
    await handle.background.wait_idle()
    assert [c["Response"] for c in receiver.callbacks] == ["Approved", "Declined"]
    assert [c["TransId"] for c in receiver.callbacks] == [approved["trans_id"], declined["trans_id"]]


async def test_fatourati_callback_rates_with_a_seed(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings, sandbox: FastAPI
) -> None:
    from datetime import UTC, datetime, timedelta

    await set_faults(client, "fatourati", drop_rate=0.5, seed=1)
    refs = []
    for n in range(8):
        request = token_request(settings, f"PN-F-05{n}", datetime.now(UTC) + timedelta(days=1))
        refs.append((await client.post("/fatourati/api/tokens", json=request)).json()["tokenRef"])
    for ref in refs:
        await client.post("/fatourati/payments", json={"reference": ref, "channel": "cih"})
    await handle.background.wait_idle()
    injected = (await client.get("/fatourati/admin/faults")).json()["injected"]
    assert 1 <= injected["drop"] <= 7


# --- the SMTP server ------------------------------------------------------------------------------


async def test_smtp_server_error_then_delivery(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings
) -> None:
    await set_faults(client, "mail", next={"error": 1})
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "noreply@portnet.ma", "t@sataa.ma", "Reçu"
    message.set_content("Votre paiement est reçu.")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", settings.sandbox_smtp_port, timeout=10) as smtp:
            smtp.send_message(message)

    async with MailSink(settings, handle.store):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send)
        assert refused.value.smtp_code == 451
        await asyncio.to_thread(send)
    inbox = (await client.get("/mail", headers={"Accept": "application/json"})).json()
    assert len(inbox) == 1
