"""Partner callbacks in process: genuine money we cannot place is kept, a reference is bound to its
order, refusals are fixed texts, the raw body is kept without card data, a "try later" is not final.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from portnet.models import Invoice, PartnerCallback, Payment, PaymentChannelData, UnappliedPayment
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import fatourati as fatourati
from portnet.settings import get_settings
from tests.support.partners import ClosedWorkflows, Ledger, Portal, new_attempt


def reference() -> str:
    return "1089" + f"{secrets.randbelow(10**9):09d}"


def issue_reference(db: Session, ledger: Ledger) -> str:
    ref = reference()
    db.add(PaymentChannelData(payment_id=ledger.payment_id, partner_reference=ref))
    db.commit()
    return ref


def paid_callback(token_ref: str, order_id: str, txn: str, amount: str = "120.00", code: str = "0") -> bytes:
    s = get_settings()
    fields: dict[str, Any] = {
        "tokenRef": token_ref,
        "orderId": order_id,
        "totalAmount": amount,
        "currency": "504",
        "transactionDate": datetime.now(UTC).isoformat(),
        "transactionNumber": txn,
        "channel": "cashplus",
        "operator": "CashPlus",
        "decisionCode": code,
        "merchantCode": s.fatourati_merchant_code,
        "storeId": s.fatourati_store_id,
    }
    return json.dumps(fatourati.signed(fields, fatourati.CALLBACK, s.fatourati_api_key)).encode()


def post_fatourati(client: Portal, body: bytes) -> Any:
    return client.post("/api/v1/callbacks/fatourati", body, {"Content-Type": "application/json"})


def unapplied(db: Session, txn: str) -> list[UnappliedPayment]:
    db.expire_all()
    return list(db.exec(select(UnappliedPayment).where(UnappliedPayment.transaction_number == txn)).all())


def txn() -> str:
    return "FTR" + secrets.token_hex(6).upper()


def test_genuine_payment_on_an_unknown_reference_is_kept_for_finance(client: Portal, db: Session) -> None:
    number = txn()
    answer = post_fatourati(client, paid_callback(reference(), "PN" + secrets.token_hex(6).upper(), number))
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "RECEIVED_UNAPPLIED" and body["receiptNumber"].startswith("ENC-")
    assert fatourati.verify(body, fatourati.CALLBACK_ANSWER, get_settings().fatourati_api_key)
    [row] = unapplied(db, number)
    assert row.payment_id is None and str(row.amount) == "120.00"
    again = post_fatourati(client, paid_callback(row.partner_reference or "", body["orderId"], number))
    assert again.json()["receiptNumber"] == body["receiptNumber"] and len(unapplied(db, number)) == 1
    assert client.app.state.temporal.calls == []


def test_genuine_payment_for_our_order_on_a_reference_never_issued_for_it_is_kept(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    issue_reference(db, ledger)
    number = txn()
    answer = post_fatourati(client, paid_callback(reference(), ledger.payment_id, number))
    assert answer.status_code == 200 and answer.json()["status"] == "RECEIVED_UNAPPLIED"
    [row] = unapplied(db, number)
    assert row.payment_id == ledger.payment_id
    assert client.app.state.temporal.calls == []  # not applied to the attempt


def test_reference_of_another_order_is_refused_and_applies_nothing(
    client: Portal, db: Session, make_invoice: Callable[..., Invoice], ledger: Ledger
) -> None:
    theirs = issue_reference(db, ledger)
    other = new_attempt(db, make_invoice(), channel="cmi_fatourati")
    number = txn()
    answer = post_fatourati(client, paid_callback(theirs, other.payment_id, number))
    assert answer.status_code == 422
    assert answer.json() == {"status": "REJECTED", "error": "reference_mismatch"}
    assert unapplied(db, number) == [] and client.app.state.temporal.calls == []
    # CMI redelivers: the same refusal, with its status code.
    assert post_fatourati(client, paid_callback(theirs, other.payment_id, number)).status_code == 422


def test_refusals_are_fixed_texts_that_echo_nothing(client: Portal) -> None:
    probe = {"tokenRef": "<script>1089|x</script>", "orderId": "cih|0", "transactionNumber": "PORTNET"}
    answer = post_fatourati(client, json.dumps(probe).encode())
    assert answer.status_code == 400
    assert answer.json() == {"status": "REJECTED", "error": "invalid_message"}
    body = paid_callback(reference(), "PN" + secrets.token_hex(6).upper(), txn())
    forged = {**json.loads(body), "signature": "0" * 64}
    answer = post_fatourati(client, json.dumps(forged).encode())
    assert answer.status_code == 401 and answer.json() == {"status": "REJECTED", "error": "bad_signature"}
    status = client.post("/api/v1/callbacks/fatourati/status", b"{}", {"Content-Type": "application/json"})
    assert status.status_code == 400 and "signature" not in status.json()


def test_try_later_is_not_the_final_answer(client: Portal, db: Session, ledger: Ledger) -> None:
    ref = issue_reference(db, ledger)
    number = txn()
    temporal = client.app.state.temporal

    class Down:
        async def get(self) -> None:
            return None

    client.app.state.temporal = Down()
    first = post_fatourati(client, paid_callback(ref, ledger.payment_id, number))
    assert first.status_code == 503 and first.json()["status"] == "RETRY"
    client.app.state.temporal = temporal
    second = post_fatourati(client, paid_callback(ref, ledger.payment_id, number))
    assert second.status_code == 200 and second.json()["status"] == "ACCEPTED"
    assert temporal.calls == [(f"payment-{ledger.payment_id}", "fatourati_result")]


def test_genuine_amanpay_payment_for_an_unknown_order_is_kept(client: Portal, db: Session) -> None:
    s = get_settings()
    order_id = "PN" + secrets.token_hex(6).upper()
    transaction = "TSH" + secrets.token_hex(5).upper()
    body = amanpay_protocol.dumps(
        {
            "merchant_id": s.amanpay_merchant_id,
            "order_id": order_id,
            "amount": "350.00",
            "status": "paid",
            "event_id": f"{order_id}-paid",
            "transaction_id": transaction,
            "paid_at": "2026-11-27T10:00:00+00:00",
        }
    )
    headers = {
        "Content-Type": "application/json",
        amanpay_protocol.AMANPAY_HEADER: amanpay_protocol.sign(
            s.amanpay_secret_key, amanpay_protocol.Message.NOTIFICATION, body
        ),
    }
    for _ in range(2):
        answer = client.post("/api/v1/callbacks/amanpay", body, headers)
        assert answer.status_code == 200
    [row] = unapplied(db, f"amanpay:{transaction}")
    assert row.payment_id is None and str(row.amount) == "350.00"


def test_raw_callback_is_kept_hashed_without_card_data(client: Portal, db: Session, ledger: Ledger) -> None:
    s = get_settings()
    fields = {"clientid": s.cmi_client_id, "oid": ledger.payment_id, "amount": "120.00", "currency": "504"}
    fields["HASH"] = cmi_protocol.compute_hash(fields, s.cmi_store_key)
    body = (
        "&".join(f"{k}={v}" for k, v in fields.items()).replace("+", "%2B").replace("/", "%2F")
        + "&pan=4000000000000010&cv2=975"
    ).encode()
    answer = client.post("/api/v1/callbacks/cmi", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.text == "APPROVED"  # malformed (fields missing): acknowledged, never captured
    db.expire_all()
    row = db.exec(
        select(PartnerCallback)
        .where(PartnerCallback.payment_id == ledger.payment_id)
        .order_by(col(PartnerCallback.id))
    ).all()[-1]
    assert row.verdict == "malformed" and row.raw_body is not None and not row.raw_truncated
    for secret in (b"4000000000000010", b"975"):
        assert secret not in row.raw_body and secret.decode() not in row.payload
    assert b"oid=" + ledger.payment_id.encode() in row.raw_body
    assert row.raw_sha256 == hashlib.sha256(row.raw_body).hexdigest()


def test_redelivery_after_close_of_the_transaction_that_settled_is_no_unapplied_money(
    client: Portal, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    """Fatourati calls again after the attempt settled on this transaction and its workflow closed:
    answered ACCEPTED from the ledger, no unapplied money (finance would refund money that paid the
    invoice). Another transaction on the same reference is still a double payment, kept."""
    ledger = new_attempt(db, make_invoice(ht="100.00", tva="20.00"), channel="cmi_fatourati")
    ref, settling = issue_reference(db, ledger), txn()
    payment = db.get(Payment, ledger.payment_id)
    assert payment is not None
    payment.status, payment.partner_transaction_id = "succeeded", settling
    db.add(payment)
    db.commit()
    client.app.state.temporal = ClosedWorkflows()
    answer = post_fatourati(client, paid_callback(ref, ledger.payment_id, settling))
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ACCEPTED" and body["receiptNumber"] == f"REC-{ledger.payment_id}"
    assert unapplied(db, settling) == []
    other = txn()
    again = post_fatourati(client, paid_callback(ref, ledger.payment_id, other))
    assert again.json()["status"] == "RECEIVED_UNAPPLIED" and len(unapplied(db, other)) == 1
