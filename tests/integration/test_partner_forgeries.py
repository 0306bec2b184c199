"""Forged partner messages, replayed as an attacker would against the running stack: none moves money.

Each test is one attack found on a fresh `make run`: the Fatourati callback's error answer used as a
signing oracle (settling invoices, creating unapplied money of any amount, a 500 with NaN), and
CMI callbacks correctly signed but for another merchant or currency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlmodel import Session, col, select

from portnet.models import Invoice, PartnerCallback, UnappliedPayment
from portnet.protocols import cmi as cmi_protocol
from portnet.settings import get_settings
from tests.support.api import Stack, start_card_payment, start_fatourati, status_of


async def oracle_signature(anonymous: httpx.AsyncClient, target: dict[str, str]) -> str:
    """The trick of the report: ask the callback's error answer to sign the joined fields for us.

    The old answer signed ``tokenRef|orderId|transactionNumber|receiptNumber|KEY`` even for a wrong
    signature; a paid callback signs ``tokenRef|orderId|totalAmount|currency|transactionDate|
    transactionNumber|channel|decisionCode|merchantCode|storeId|KEY``. Packing the first six fields
    into ``tokenRef`` and ``channel|decisionCode`` into ``orderId`` makes both strings equal when
    ``storeId`` is empty. Returns what the answer signed (a dummy when it signs nothing, as it must).
    """
    probe = {
        "tokenRef": "|".join(
            target[k]
            for k in (
                "tokenRef",
                "orderId",
                "totalAmount",
                "currency",
                "transactionDate",
                "transactionNumber",
            )
        ),
        "orderId": f"{target['channel']}|{target['decisionCode']}",
        "transactionNumber": target["merchantCode"],
        "signature": "0" * 64,
    }
    answer = await anonymous.post("/api/v1/callbacks/fatourati", json=probe)
    assert answer.status_code < 500
    body: dict[str, Any] = answer.json()
    # An error answer is a fixed text: it signs nothing and echoes nothing the caller sent.
    assert "signature" not in body, body
    assert target["tokenRef"] not in answer.text and target["merchantCode"] not in answer.text
    return str(body.get("signature") or "0" * 64)


def forged_callback(reference: str, order_id: str, amount: str, txn: str) -> dict[str, str]:
    return {
        "tokenRef": reference,
        "orderId": order_id,
        "totalAmount": amount,
        "currency": "504",
        "transactionDate": datetime.now(UTC).isoformat(),
        "transactionNumber": txn,
        "channel": "cih",
        "decisionCode": "0",
        "merchantCode": get_settings().fatourati_merchant_code,
        "storeId": "",
    }


def unapplied(db: Session, txn: str) -> list[UnappliedPayment]:
    db.expire_all()
    return list(db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == txn)).all())


async def test_fatourati_error_answer_is_no_signing_oracle_and_settles_nothing(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
    db: Session,
) -> None:
    invoice = make_invoice()
    payment = await start_fatourati(sataa, [invoice.id or 0])
    reference = payment["next_action"]["fields"]["reference"]
    forged = forged_callback(reference, payment["id"], payment["amount"], "FTRORACLE1")
    forged["signature"] = await oracle_signature(anonymous, forged)

    answer = await anonymous.post("/api/v1/callbacks/fatourati", json=forged)
    assert answer.status_code in (400, 401), answer.text
    assert "signature" not in answer.json()
    assert await status_of(sataa, invoice.id or 0) == "in_payment"
    view = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "awaiting_payer"
    assert unapplied(db, "FTRORACLE1") == []
    await sataa.post(f"/api/v1/payments/{payment['id']}/cancel")


async def test_fatourati_oracle_creates_no_unapplied_money_of_any_amount(
    stack: Stack, anonymous: httpx.AsyncClient, db: Session
) -> None:
    for txn, amount in (("FTRHUGE1", "999999.00"), ("FTRNEG1", "-5000.00")):
        forged = forged_callback("1089012345678", "PNFFFFFFFFFFFF", amount, txn)
        forged["signature"] = await oracle_signature(anonymous, forged)
        answer = await anonymous.post("/api/v1/callbacks/fatourati", json=forged)
        assert answer.status_code in (400, 401), answer.text
        assert unapplied(db, txn) == []


async def test_fatourati_nan_amount_is_refused_not_a_server_error(
    stack: Stack, anonymous: httpx.AsyncClient, db: Session
) -> None:
    for txn, amount in (("FTRNAN1", "NaN"), ("FTRINF1", "Infinity"), ("FTREXP1", "1E+3")):
        forged = forged_callback("1089012345679", "PNEEEEEEEEEEEE", amount, txn)
        forged["signature"] = await oracle_signature(anonymous, forged)
        answer = await anonymous.post("/api/v1/callbacks/fatourati", json=forged)
        assert answer.status_code in (400, 401), answer.text
        assert unapplied(db, txn) == []


def _signed_cmi(fields: dict[str, str]) -> dict[str, str]:
    fields = {k: v for k, v in fields.items() if k != "HASH"}
    fields["HASH"] = cmi_protocol.compute_hash(fields, get_settings().cmi_store_key)
    return fields


async def test_cmi_callback_for_another_merchant_or_currency_is_not_captured(
    sataa: httpx.AsyncClient, anonymous: httpx.AsyncClient, make_invoice: Callable[..., Invoice], db: Session
) -> None:
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    approved = {
        **payment["next_action"]["fields"],
        "ProcReturnCode": "00",
        "Response": "Approved",
        "AuthCode": "123456",
        "HostRefNum": "26331123456",
        "ErrMsg": "",
        "mdStatus": "1",
        "EXTRA.TRXDATE": "20261127 10:00:00",
        "MaskedPan": "400000***0010",
    }
    # Correctly signed with our store key (a key shared with another store, or a test gateway).
    other_store = _signed_cmi({**approved, "clientid": "600000999", "TransId": "OTHERSTORE1"})
    dollars = _signed_cmi({**approved, "currency": "840", "TransId": "DOLLARS1"})
    for forged in (other_store, dollars):
        answer = await anonymous.post("/api/v1/callbacks/cmi", data=forged)
        assert answer.status_code == 200 and answer.text != "ACTION=POSTAUTH", answer.text
    view = (await sataa.get(f"/api/v1/payments/{payment['id']}")).json()
    assert view["status"] == "awaiting_payer" and view["declines"] == 0
    db.expire_all()
    verdicts = [
        c.verdict
        for c in db.exec(
            select(PartnerCallback)
            .where(PartnerCallback.payment_id == payment["id"])
            .order_by(col(PartnerCallback.id))
        ).all()
    ]
    assert verdicts == ["malformed", "malformed"]
    # The same message with our merchant id and the dirham is taken: those two fields made the difference.
    genuine = await anonymous.post(
        "/api/v1/callbacks/cmi", data=_signed_cmi({**approved, "TransId": "OURS1"})
    )
    assert genuine.text == "ACTION=POSTAUTH"


async def test_two_megabyte_callback_is_refused_with_413_and_kept_capped(
    stack: Stack, anonymous: httpx.AsyncClient, db: Session
) -> None:
    big = b'{"tokenRef":"' + b"9" * (2 * 1024 * 1024) + b'"}'
    for path, headers in (
        ("/api/v1/callbacks/fatourati", {"Content-Type": "application/json"}),
        ("/api/v1/callbacks/amanpay", {"Content-Type": "application/json", "X-Amanpay-Signature": "0" * 64}),
        ("/api/v1/callbacks/emitters/ack", {"Content-Type": "application/json"}),
        ("/api/v1/callbacks/cmi", {"Content-Type": "application/x-www-form-urlencoded"}),
    ):
        answer = await anonymous.post(path, content=big, headers=headers)
        assert answer.status_code == 413, (path, answer.status_code)
        assert len(answer.content) < 200 and b"999" not in answer.content
    db.expire_all()
    rows = db.exec(
        select(PartnerCallback)
        .where(PartnerCallback.verdict == "too_large")
        .order_by(col(PartnerCallback.id))
    ).all()[-4:]
    assert [r.partner for r in rows] == ["fatourati", "amanpay", "emitter", "cmi"]
    for row in rows:
        assert row.raw_body is not None and len(row.raw_body) == 16 * 1024
        assert row.raw_body == big[: 16 * 1024]
        assert row.raw_sha256 == hashlib.sha256(row.raw_body).hexdigest()
        assert row.raw_truncated is True
