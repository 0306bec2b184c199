"""The PayDirect sandbox: contracts checked, a secret code by SMS, the authorization, signed both ways."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx

from portnet.settings import Settings
from sandbox.context import Sandbox
from sandbox.paydirect import Authorization
from tests.support.sandbox import PAYDIRECT_HEADER, Message, answer_verifies, signed_json

CONTRACT = {
    "contract_number": "PD1002457",
    "cin": "BE123456",
    "phone": "0600000001",
    "mandataire": "Y. Alaoui",
}
PHONE = "+212600000001"


async def call(
    client: httpx.AsyncClient, settings: Settings, path: str, body: dict[str, Any], message: Message
) -> httpx.Response:
    raw, headers = signed_json(body, settings.paydirect_secret_key, message, PAYDIRECT_HEADER)
    return await client.post(f"/paydirect/api/authorizations{path}", content=raw, headers=headers)


async def start(
    client: httpx.AsyncClient, settings: Settings, order_id: str, **changes: str
) -> httpx.Response:
    body = {"order_id": order_id, "amount": "1920.00", **CONTRACT, **changes}
    return await call(client, settings, "", body, Message.AUTHORIZATION_CREATE)


async def last_code(client: httpx.AsyncClient, order_id: str) -> str:
    messages = (await client.get("/sms", params={"to": PHONE})).json()
    text = next(m["text"] for m in messages if order_id in m["text"])
    found = re.search(r"code secret est (\d{6})", text)
    assert found is not None, text
    return found.group(1)


async def verify(
    client: httpx.AsyncClient, settings: Settings, ref: str, otp: str, request_id: str
) -> dict[str, Any]:
    reply = await call(
        client, settings, f"/{ref}/verify", {"otp": otp, "request_id": request_id}, Message.OTP_VERIFY
    )
    assert reply.status_code == 200, reply.text
    assert answer_verifies(reply, settings.paydirect_secret_key, Message.OTP_VERDICT, PAYDIRECT_HEADER)
    verdict: dict[str, Any] = reply.json()
    assert verdict["request_id"] == request_id  # a verdict names the request it answers
    return verdict


async def test_unknown_or_mismatched_contract_is_refused_unsigned(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    cases = [
        ({"contract_number": "PD0000000"}, "unknown_contract"),
        ({"cin": "ZZ000000"}, "contract_mismatch"),
        ({"phone": "+212611111111"}, "phone_mismatch"),
    ]
    for changes, reason in cases:
        reply = await start(client, settings, "PN00000000P001", **changes)
        assert reply.status_code == 422 and reply.json()["reason"] == reason, changes
        assert PAYDIRECT_HEADER.lower() not in reply.headers
    raw, headers = signed_json(
        {"order_id": "PN00000000P001", "amount": "1920.00", **CONTRACT},
        "wrong",
        Message.AUTHORIZATION_CREATE,
        PAYDIRECT_HEADER,
    )
    forged = await client.post("/paydirect/api/authorizations", content=raw, headers=headers)
    assert forged.status_code == 401 and PAYDIRECT_HEADER.lower() not in forged.headers
    assert (await start(client, settings, "PN00000000P001", amount="0.001")).status_code == 422
    assert (await client.get("/sms", params={"to": PHONE})).json() == []


async def test_sms_code_authorizes_once(client: httpx.AsyncClient, settings: Settings) -> None:
    started = await start(client, settings, "PN00000000P002")
    assert started.status_code == 201, started.text
    assert answer_verifies(started, settings.paydirect_secret_key, Message.AUTHORIZATION, PAYDIRECT_HEADER)
    auth = started.json()
    assert auth["result"] == "otp_sent" and auth["attempts_left"] == 3 and auth["sends"] == 1
    again = await start(client, settings, "PN00000000P002")  # a retried request: same authorization
    assert again.status_code == 200 and again.json()["auth_ref"] == auth["auth_ref"]
    code = await last_code(client, "PN00000000P002")
    wrong = "000000" if code != "000000" else "111111"

    first = await verify(client, settings, auth["auth_ref"], wrong, "r1")
    assert first["result"] == "wrong" and first["attempts_left"] == 2
    assert (
        await verify(client, settings, auth["auth_ref"], wrong, "r1") == first
    )  # answered again, not counted
    right = await verify(client, settings, auth["auth_ref"], code, "r2")
    assert right["result"] == "authorized" and right["transaction_id"].startswith("BP")
    assert re.fullmatch(r"\d{6}", right["authorization_code"])
    reused = await verify(client, settings, auth["auth_ref"], code, "r3")
    assert reused["result"] == "already_authorized"
    resend = await call(client, settings, f"/{auth['auth_ref']}/otp", {}, Message.OTP_RESEND)
    assert resend.status_code == 409


async def test_three_wrong_codes_need_a_new_one(client: httpx.AsyncClient, settings: Settings) -> None:
    auth = (await start(client, settings, "PN00000000P003")).json()
    code = await last_code(client, "PN00000000P003")
    wrong = "000000" if code != "000000" else "111111"
    verdicts = [await verify(client, settings, auth["auth_ref"], wrong, f"w{n}") for n in range(3)]
    assert [v["result"] for v in verdicts] == ["wrong", "wrong", "dead"]
    assert (await verify(client, settings, auth["auth_ref"], code, "late"))["result"] == "dead"
    resent = await call(client, settings, f"/{auth['auth_ref']}/otp", {}, Message.OTP_RESEND)
    assert resent.status_code == 200 and resent.json()["sends"] == 2 and resent.json()["attempts_left"] == 3
    assert answer_verifies(resent, settings.paydirect_secret_key, Message.OTP_SENT, PAYDIRECT_HEADER)
    fresh = await last_code(client, "PN00000000P003")
    assert (await verify(client, settings, auth["auth_ref"], fresh, "ok"))["result"] == "authorized"
    assert (await call(client, settings, "/PDA000/otp", {}, Message.OTP_RESEND)).status_code == 404


async def test_code_expires(client: httpx.AsyncClient, handle: Sandbox, settings: Settings) -> None:
    auth = (await start(client, settings, "PN00000000P004")).json()
    code = await last_code(client, "PN00000000P004")
    later = handle.clock() + timedelta(seconds=settings.paydirect_otp_ttl_seconds + 1)
    handle.clock = lambda: later
    assert (await verify(client, settings, auth["auth_ref"], code, "x"))["result"] == "expired"


async def test_the_bank_keeps_only_a_keyed_hash_of_the_code(
    client: httpx.AsyncClient, handle: Sandbox, settings: Settings
) -> None:
    auth = (await start(client, settings, "PN00000000P005")).json()
    code = await last_code(client, "PN00000000P005")
    [stored] = handle.store.run(lambda tx: tx.find(Authorization, "PN00000000P005"))
    assert stored.ref == auth["auth_ref"] and re.fullmatch(r"[0-9a-f]{64}", stored.otp_mac)
    assert code not in stored.model_dump_json()
    unsigned = await client.post(
        f"/paydirect/api/authorizations/{auth['auth_ref']}/verify", json={"otp": code}
    )
    assert unsigned.status_code == 401
