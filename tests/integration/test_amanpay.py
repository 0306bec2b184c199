"""Amanpay sub-channels end to end over real HTTP: API -> workflow -> sandboxes -> signed notices.

Updates (the SMS code and its resend) run against the dev server: the time-skipping server does
not skip time while a client waits on an Update (temporalio/sdk-python#675).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlmodel import Session, select

from portnet.models import Invoice, PartnerCallback, UnappliedPayment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.settings import get_settings
from tests.support.api import (
    CONTRACT,
    Stack,
    last_sms_code,
    sandbox_url,
    start_amanpay,
    until_receipt,
    until_status,
)
from tests.support.workers import eventually


async def test_cash_code_paid_at_tashilat_settles_and_mails_the_code(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice(ht="1600.00", tva="320.00")
    reply = await start_amanpay(
        sataa,
        [invoice.id or 0],
        "amanpay_code",
        {"last_name": "Alaoui", "first_name": "Yassine", "email": "tresorerie@sataa.ma"},
    )
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    action = payment["next_action"]
    assert action["type"] == "payment_code" and re.fullmatch(r"18 \d{4} \d{3}-\d{3}", action["code"])
    assert action["expires_at"] == payment["deadline"]

    async def mail() -> list[dict[str, Any]] | None:
        messages: list[dict[str, Any]] = (
            await anonymous.get(sandbox_url("/sandbox/mail"), params={"to": "tresorerie@sataa.ma"})
        ).json()
        return [m for m in messages if action["code"] in (m.get("subject") or "")] or None

    message = (await eventually(mail, timeout=30))[0]
    assert (
        "1\u202f920,00" in message["text"] and "Tashilat" in message["text"] and "avant le" in message["text"]
    )

    wrong = await anonymous.post(
        sandbox_url("/sandbox/tashilat/payments"), json={"code": action["code"], "amount": "1900.00"}
    )
    assert wrong.json() == {"result": "refused", "reason": "wrong_amount", "message": wrong.json()["message"]}
    unknown = await anonymous.post(
        sandbox_url("/sandbox/tashilat/payments"), json={"code": "18 0000 000-000", "amount": "1920.00"}
    )
    assert unknown.json()["reason"] == "unknown"
    paid = await anonymous.post(
        sandbox_url("/sandbox/tashilat/payments"), json={"code": action["code"], "amount": "1920.00"}
    )
    assert paid.json()["result"] == "paid"
    again = await anonymous.post(
        sandbox_url("/sandbox/tashilat/payments"), json={"code": action["code"], "amount": "1920.00"}
    )
    assert again.json()["reason"] == "already_paid"

    done = await until_status(sataa, payment["id"], "succeeded")
    assert done["transaction_id"].startswith("TSH")
    assert (await until_receipt(sataa, payment["id"]))["receipt_url"]
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert detail["status"] in ("paid", "payment_confirmed")


async def test_forged_amanpay_notification_changes_nothing(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    invoice = make_invoice()
    payment = (
        await start_amanpay(
            sataa,
            [invoice.id or 0],
            "amanpay_code",
            {"last_name": "A", "first_name": "B", "email": "x@sataa.ma"},
        )
    ).json()
    body = amanpay_protocol.dumps(
        {
            "merchant_id": get_settings().amanpay_merchant_id,
            "order_id": payment["id"],
            "amount": "120.00",
            "status": "paid",
            "event_id": f"{payment['id']}-paid",
            "transaction_id": "X",
        }
    )
    forged = await anonymous.post(
        "/api/v1/callbacks/amanpay", content=body, headers={"X-Amanpay-Signature": "0" * 64}
    )
    assert forged.status_code == 401
    assert (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()["status"] == "awaiting_payer"
    rows = db.exec(select(PartnerCallback).where(PartnerCallback.payment_id == payment["id"])).all()
    assert [r.verdict for r in rows] == ["bad_signature"]
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
    await until_status(sataa, payment["id"], "cancelled")


async def test_late_cash_notification_is_an_unapplied_payment(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    invoice = make_invoice()
    payment = (
        await start_amanpay(
            sataa,
            [invoice.id or 0],
            "amanpay_code",
            {"last_name": "A", "first_name": "B", "email": "x@sataa.ma"},
        )
    ).json()
    code = payment["next_action"]["code"]
    # Paid at the agency while the code is valid, but the agency's notification comes late...
    paid = await anonymous.post(
        sandbox_url("/sandbox/tashilat/payments"),
        json={"code": code, "amount": "120.00", "notify_delay_seconds": 1.5},
    )
    assert paid.json()["result"] == "paid"
    # ... after the attempt was closed (here: cancelled by the payer, which also cancels the code).
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
    await until_status(sataa, payment["id"], "cancelled")

    def unapplied() -> list[UnappliedPayment]:
        db.expire_all()
        return list(
            db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment["id"])).all()
        )

    async def probe() -> list[UnappliedPayment] | None:
        return unapplied() or None

    rows = await eventually(probe, timeout=20)
    assert (
        len(rows) == 1
        and str(rows[0].amount) == "120.00"
        and rows[0].transaction_number.startswith("amanpay:TSH")
    )
    detail = (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()
    assert detail["status"] == "unpaid"


async def test_amanty_wrong_password_insufficient_balance_then_paid(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    reply = await start_amanpay(sataa, [invoice.id or 0], "amanpay_amanty", {"email": "tresorerie@sataa.ma"})
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    action = payment["next_action"]
    assert action["type"] == "redirect" and "/sandbox/amanpay/amanty/" in action["url"]
    page = await anonymous.get(action["url"])
    assert page.status_code == 200 and payment["id"] in page.text
    bad = await anonymous.post(
        action["url"], data={"login": "amanty.sataa@demo.ma", "password": "nope", "action": "login"}
    )
    assert bad.status_code == 401 and "incorrect" in bad.text
    poor = await anonymous.post(
        action["url"], data={"login": "amanty.petit@demo.ma", "password": "Amanty2026!", "action": "confirm"}
    )
    assert poor.status_code == 402 and "insuffisant" in poor.text
    refused = await until_status(sataa, payment["id"], "awaiting_payer")
    assert refused["declines"] == 1 and "insuffisant" in refused["last_decline"]
    ok = await anonymous.post(
        action["url"], data={"login": "amanty.sataa@demo.ma", "password": "Amanty2026!", "action": "confirm"}
    )
    assert ok.status_code == 303 and ok.headers["location"].endswith(f"/paiements/{payment['id']}")
    done = await until_status(sataa, payment["id"], "succeeded")
    assert done["transaction_id"].startswith("AMT")


async def test_amanty_cancel_releases(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    payment = (
        await start_amanpay(sataa, [invoice.id or 0], "amanpay_amanty", {"email": "tresorerie@sataa.ma"})
    ).json()
    out = await anonymous.post(payment["next_action"]["url"], data={"action": "cancel"})
    assert out.status_code == 303
    done = await until_status(sataa, payment["id"], "cancelled")
    assert "Amanty" in done["error"]
    assert (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()["status"] == "unpaid"


async def test_paydirect_unknown_or_mismatched_contract_is_refused_and_holds_nothing(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    unknown = await start_amanpay(
        sataa, [invoice.id or 0], "amanpay_paydirect", {**CONTRACT, "contract_number": "PD9999999"}
    )
    assert unknown.status_code == 422 and "inconnu" in unknown.json()["detail"]
    mismatch = await start_amanpay(
        sataa, [invoice.id or 0], "amanpay_paydirect", {**CONTRACT, "cin": "ZZ999999"}
    )
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "contract_mismatch"
    assert (await sataa.get(f"/api/v1/invoices/{invoice.id}")).json()["status"] == "unpaid"


async def test_paydirect_wrong_code_then_right_code(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    reply = await start_amanpay(sataa, [invoice.id or 0], "amanpay_paydirect", CONTRACT)
    assert reply.status_code == 201, reply.text
    payment = reply.json()
    assert payment["next_action"]["type"] == "sms_code" and payment["next_action"]["attempts_left"] == 3
    code = await last_sms_code(anonymous, CONTRACT["phone"], payment["id"])
    url = f"/api/v1/payments/{payment['id']}/sms-code"

    malformed = await sataa.post(url, json={"code": "12ab"})
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_format"
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    first = await sataa.post(url, json={"code": wrong})
    assert first.status_code == 422 and first.json()["attempts_left"] == 2
    state = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert state["next_action"]["attempts_left"] == 2
    ok = await sataa.post(url, json={"code": code})
    assert ok.status_code == 200, ok.text
    done = await until_status(sataa, payment["id"], "succeeded")
    assert done["transaction_id"].startswith("BP")
    assert (await until_receipt(sataa, payment["id"]))["receipt_url"]
    used = await sataa.post(url, json={"code": code})
    assert used.status_code == 409


async def test_paydirect_three_wrong_codes_kill_the_code_and_resend_is_limited(
    stack: Stack, sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    payment = (await start_amanpay(sataa, [invoice.id or 0], "amanpay_paydirect", CONTRACT)).json()
    code = await last_sms_code(anonymous, CONTRACT["phone"], payment["id"])
    url = f"/api/v1/payments/{payment['id']}/sms-code"
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    answers = [await sataa.post(url, json={"code": wrong}) for _ in range(3)]
    assert [a.status_code for a in answers] == [422, 422, 409]
    assert [a.json()["attempts_left"] for a in answers] == [2, 1, 0]
    dead = await sataa.post(url, json={"code": code})
    assert dead.status_code == 409 and "nouveau code" in dead.json()["detail"]

    too_soon = await sataa.post(f"{url}/resend")
    assert too_soon.status_code == 429 and int(too_soon.headers["Retry-After"]) > 0
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
    cancelled = await until_status(sataa, payment["id"], "cancelled")
    assert cancelled["status"] == "cancelled"
    assert (await sataa.post(url, json={"code": code})).status_code == 409


async def test_sms_codes_of_another_payment_or_company_are_not_found(
    stack: Stack, aska: httpx.AsyncClient, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    payment = (await start_amanpay(sataa, [invoice.id or 0], "amanpay_paydirect", CONTRACT)).json()
    assert (
        await aska.post(f"/api/v1/payments/{payment['id']}/sms-code", json={"code": "123456"})
    ).status_code == 404
    assert (
        await sataa.post("/api/v1/payments/PNFFFFFFFFFFFF/sms-code", json={"code": "123456"})
    ).status_code == 404
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")
    await until_status(sataa, payment["id"], "cancelled")
    await asyncio.sleep(0)
    assert get_settings().paydirect_otp_ttl_seconds == 600
