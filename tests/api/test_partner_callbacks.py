"""Partner callbacks in process: genuine money we cannot place is kept, a reference is bound to its
order, refusals are fixed texts, the raw body is kept without card data, a "try later" is not final.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from prometheus_client import REGISTRY
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


# --- a genuine "paid" of another amount than the attempt's: finance's money, never the attempt's ------


def callbacks_of(db: Session, payment_id: str) -> list[PartnerCallback]:
    db.expire_all()
    query = select(PartnerCallback).where(PartnerCallback.payment_id == payment_id)
    return list(db.exec(query.order_by(col(PartnerCallback.id))).all())


def unapplied_of(db: Session, payment_id: str) -> list[UnappliedPayment]:
    db.expire_all()
    return list(db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == payment_id)).all())


def counted(partner: str, verdict: str) -> float:
    labels = {"partner": partner, "verdict": verdict}
    return REGISTRY.get_sample_value("portnet_partner_callbacks_total", labels) or 0.0


def untouched(db: Session, ledger: Ledger) -> None:
    """The attempt did not settle on the money: the ledger has no payment for it."""
    db.expire_all()
    payment, invoice = db.get(Payment, ledger.payment_id), db.get(Invoice, ledger.invoice_id)
    assert payment is not None and invoice is not None
    assert payment.status == "awaiting_payer" and payment.partner_transaction_id is None
    assert invoice.status != "paid"


def test_fatourati_payment_of_another_amount_is_kept_for_finance_and_acknowledged(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ref, number = issue_reference(db, ledger), txn()
    before = counted("fatourati", "unapplied")
    answer = post_fatourati(client, paid_callback(ref, ledger.payment_id, number, amount="100.00"))
    # CMI's acknowledgement of receipt (it stops calling), signed with its status, as for any money kept.
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "RECEIVED_UNAPPLIED" and body["receiptNumber"].startswith("ENC-")
    assert fatourati.verify(body, fatourati.CALLBACK_ANSWER, get_settings().fatourati_api_key)
    [row] = unapplied(db, number)
    assert (row.channel, row.partner, row.partner_reference) == ("cmi_fatourati", "fatourati", ref)
    assert row.amount == Decimal("100.00") and row.payment_id == ledger.payment_id
    assert row.status == "open" and row.callback_id is not None
    assert row.reason == "Montant différent de la demande : attendu 120,00 MAD, reçu 100,00 MAD"
    # Never given to the attempt as a payment: only told to give its invoices back (the reference is spent).
    released = [(f"payment-{ledger.payment_id}", "cancel")]
    assert client.app.state.temporal.calls == released
    untouched(db, ledger)
    assert counted("fatourati", "unapplied") == before + 1

    # CMI redelivers: the first answer again, still one row of money, nothing more to the attempt.
    again = post_fatourati(client, paid_callback(ref, ledger.payment_id, number, amount="100.00"))
    assert again.status_code == 200 and again.json()["receiptNumber"] == body["receiptNumber"]
    assert len(unapplied(db, number)) == 1 and client.app.state.temporal.calls == released
    assert [c.verdict for c in callbacks_of(db, ledger.payment_id)] == ["unapplied", "replay"]


def test_fatourati_refusal_of_another_amount_is_acknowledged_and_keeps_nothing(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ref, number = issue_reference(db, ledger), txn()
    answer = post_fatourati(client, paid_callback(ref, ledger.payment_id, number, amount="100.00", code="1"))
    assert answer.status_code == 200 and answer.json()["status"] == "RECORDED"
    assert fatourati.verify(answer.json(), fatourati.CALLBACK_ANSWER, get_settings().fatourati_api_key)
    assert unapplied(db, number) == [] and client.app.state.temporal.calls == []
    assert [c.verdict for c in callbacks_of(db, ledger.payment_id)] == ["declined"]


def test_forged_payment_of_another_amount_is_refused_unsigned_and_keeps_nothing(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ref, number = issue_reference(db, ledger), txn()
    forged = json.loads(paid_callback(ref, ledger.payment_id, number, amount="100.00"))
    forged["signature"] = fatourati.sign(forged, fatourati.CALLBACK, "not-the-key")
    answer = post_fatourati(client, json.dumps(forged).encode())
    assert answer.status_code == 401 and answer.json() == {"status": "REJECTED", "error": "bad_signature"}
    # Signed, then the amount changed in transit: the signature no longer holds.
    tampered = {**json.loads(paid_callback(ref, ledger.payment_id, number)), "totalAmount": "100.00"}
    answer = post_fatourati(client, json.dumps(tampered).encode())
    assert answer.status_code == 401 and answer.json() == {"status": "REJECTED", "error": "bad_signature"}
    assert unapplied(db, number) == [] and client.app.state.temporal.calls == []
    untouched(db, ledger)


def test_payment_of_another_amount_refused_by_the_former_rule_is_kept_on_redelivery(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    """A delivery answered 422 before such money was kept: CMI's next delivery is judged again."""
    ref, number = issue_reference(db, ledger), txn()
    body = paid_callback(ref, ledger.payment_id, number, amount="100.00")
    db.add(
        PartnerCallback(
            partner="fatourati",
            payment_id=ledger.payment_id,
            verdict="amount_mismatch",
            answer=json.dumps({"status": "REJECTED", "error": "amount_mismatch"}),
            payload="{}",
            raw_body=body,
            dedupe_key=f"fatourati:{number}:0",
        )
    )
    db.commit()
    answer = post_fatourati(client, body)
    assert answer.status_code == 200 and answer.json()["status"] == "RECEIVED_UNAPPLIED"
    [row] = unapplied(db, number)
    assert row.amount == Decimal("100.00") and "attendu 120,00 MAD" in row.reason
    assert client.app.state.temporal.calls == [(f"payment-{ledger.payment_id}", "cancel")]
    untouched(db, ledger)


def amanpay_notice(order_id: str, amount: str, status: str = "paid") -> tuple[bytes, dict[str, str], str]:
    s = get_settings()
    transaction = "TSH" + secrets.token_hex(5).upper()
    fields = {
        "merchant_id": s.amanpay_merchant_id,
        "order_id": order_id,
        "amount": amount,
        "status": status,
        "event_id": f"{order_id}-{status}",
        "transaction_id": transaction if status == "paid" else "",
        "paid_at": "2026-11-27T10:00:00+00:00" if status == "paid" else "",
        "channel": "tashilat",
    }
    if status != "paid":
        fields["reason"] = "insufficient_balance"
    body = amanpay_protocol.dumps({k: v for k, v in fields.items() if v or k == "transaction_id"})
    signature = amanpay_protocol.sign(s.amanpay_secret_key, amanpay_protocol.Message.NOTIFICATION, body)
    headers = {"Content-Type": "application/json", amanpay_protocol.AMANPAY_HEADER: signature}
    return body, headers, transaction


def test_amanpay_payment_of_another_amount_is_kept_for_finance_and_acknowledged(
    client: Portal, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    ledger = new_attempt(db, make_invoice(ht="100.00", tva="20.00"), channel="amanpay_code")
    body, headers, transaction = amanpay_notice(ledger.payment_id, "1200.00")
    before = counted("amanpay", "unapplied")
    answer = client.post("/api/v1/callbacks/amanpay", body, headers)
    assert answer.status_code == 200 and answer.json() == {"status": "unapplied"}
    [row] = unapplied(db, f"amanpay:{transaction}")
    assert (row.channel, row.partner, row.payment_id) == ("amanpay_code", "amanpay", ledger.payment_id)
    assert row.amount == Decimal("1200.00")
    assert row.reason == "Montant différent de la demande : attendu 120,00 MAD, reçu 1\u202f200,00 MAD"
    released = [(f"payment-{ledger.payment_id}", "cancel")]
    assert client.app.state.temporal.calls == released
    untouched(db, ledger)
    assert counted("amanpay", "unapplied") == before + 1

    # Amanpay redelivers (any 2xx stops it): acknowledged again, still one row of money.
    again = client.post("/api/v1/callbacks/amanpay", body, headers)
    assert again.status_code == 200 and len(unapplied(db, f"amanpay:{transaction}")) == 1
    assert [c.verdict for c in callbacks_of(db, ledger.payment_id)] == ["unapplied", "replay"]
    assert client.app.state.temporal.calls == released

    # A notice of another amount signed with another key is refused, unsigned, and keeps nothing.
    forged, forged_headers, forged_transaction = amanpay_notice(ledger.payment_id, "1300.00")
    forged_headers[amanpay_protocol.AMANPAY_HEADER] = amanpay_protocol.sign(
        "not-the-key", amanpay_protocol.Message.NOTIFICATION, forged
    )
    refused = client.post("/api/v1/callbacks/amanpay", forged, forged_headers)
    assert refused.status_code == 401 and unapplied(db, f"amanpay:{forged_transaction}") == []


def test_amanpay_refusal_of_another_amount_is_acknowledged_and_keeps_nothing(
    client: Portal, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    ledger = new_attempt(db, make_invoice(ht="100.00", tva="20.00"), channel="amanpay_amanty")
    body, headers, _ = amanpay_notice(ledger.payment_id, "1200.00", status="refused")
    answer = client.post("/api/v1/callbacks/amanpay", body, headers)
    assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
    db.expire_all()
    assert (
        db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == ledger.payment_id)).all() == []
    )
    assert client.app.state.temporal.calls == []
    untouched(db, ledger)


def test_card_approval_of_another_amount_is_never_captured_and_its_verdict_kept(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    """CMI only authorised (PreAuth): our APPROVED acknowledges without capture, so no money is taken;
    the attempt is not told, and its own amount still captures."""
    s = get_settings()

    def approval(amount: str, trans_id: str) -> bytes:
        fields = cmi_protocol.build_payment_fields(
            client_id=s.cmi_client_id,
            store_key=s.cmi_store_key,
            oid=ledger.payment_id,
            amount=amount,
            ok_url="https://portnet.test/ok",
            fail_url="https://portnet.test/fail",
            shop_url="https://portnet.test/shop",
            callback_url="https://portnet.test/api/v1/callbacks/cmi",
            rnd=secrets.token_hex(10),
            email="tresorerie@sataa.ma",
            bill_to_name="Yassine Alaoui",
            bill_to_company="SATAA IMPORT EXPORT",
            tel="0522000000",
        )
        fields.update(
            {
                "ProcReturnCode": "00",
                "Response": "Approved",
                "AuthCode": "123456",
                "TransId": trans_id,
                "HostRefNum": "263311234567",
                "ErrMsg": "",
                "mdStatus": "1",
                "EXTRA.TRXDATE": "20261127 10:15:00",
                "MaskedPan": "400000***0010",
            }
        )
        fields["HASH"] = cmi_protocol.compute_hash(fields, s.cmi_store_key)
        return urlencode(fields).encode()

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    other = approval("100.00", "26331OTHER0001")
    for _ in range(2):  # CMI may call again: the same acknowledgement, never a capture
        assert client.post("/api/v1/callbacks/cmi", other, form).text == "APPROVED"
    assert client.app.state.temporal.calls == []
    untouched(db, ledger)
    assert [c.verdict for c in callbacks_of(db, ledger.payment_id)] == ["amount_mismatch"] * 2
    assert [c.answer for c in callbacks_of(db, ledger.payment_id)] == ["APPROVED"] * 2
    assert (
        db.exec(select(UnappliedPayment).where(UnappliedPayment.payment_id == ledger.payment_id)).all() == []
    )

    own = client.post("/api/v1/callbacks/cmi", approval("120.00", "26331OWN00001"), form)
    assert own.text == "ACTION=POSTAUTH"
    assert [c.verdict for c in callbacks_of(db, ledger.payment_id)] == ["amount_mismatch"] * 2 + ["accepted"]


def test_payment_of_another_amount_for_a_closed_attempt_is_kept_with_its_reason(
    client: Portal, db: Session, ledger: Ledger
) -> None:
    ref, number = issue_reference(db, ledger), txn()
    payment = db.get(Payment, ledger.payment_id)
    assert payment is not None
    payment.status = "expired"
    db.add(payment)
    db.commit()
    client.app.state.temporal = ClosedWorkflows()  # any call to it would fail: none is made
    answer = post_fatourati(client, paid_callback(ref, ledger.payment_id, number, amount="100.00"))
    assert answer.status_code == 200 and answer.json()["status"] == "RECEIVED_UNAPPLIED"
    [row] = unapplied(db, number)
    assert row.reason.startswith("Montant différent de la demande") and row.amount == Decimal("100.00")
