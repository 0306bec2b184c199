"""The field rules partner messages are held to before their signature, and the signing strings."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

import pytest

from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import emitter as emitter_protocol
from portnet.protocols import fatourati as fatourati
from portnet.protocols.fields import MessageRejected, parse_amount, strict_form, strict_json_object
from web.callback_inbox import without_card_fields

KEY = "K3y|with\\odd"


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "Infinity", "-Infinity", "1E+3", "1e3", "-5000.00", "0", "0.00", "1.234", "+1.00", " 1.00",
     "1.00\n", "1,00", "1 000.00", "１２０.００", "٣.٠٠", "0x10", "", "1.", ".5", "01.00", "1" * 13],
)  # fmt: skip
def test_amounts_that_are_not_money_are_refused(text: str) -> None:
    assert parse_amount(text) is None


@pytest.mark.parametrize(
    ("text", "value"), [("120.00", "120.00"), ("120", "120.00"), ("0.5", "0.50"), ("999999.99", "999999.99")]
)
def test_amounts_in_dirhams(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


def test_fatourati_signing_string_starts_with_the_message_type() -> None:
    fields = {"tokenRef": "1089010000162", "status": "PAID"}
    text = b"FATOURATI_STATUS_ANSWER|1089010000162|PAID|" + KEY.encode()
    assert (
        fatourati.sign(fields, fatourati.STATUS_ANSWER, KEY)
        == hmac.new(KEY.encode(), text, hashlib.sha256).hexdigest()
    )
    # Same fields, same order, another type: another signature.
    signed = fatourati.signed(fields, fatourati.STATUS_ANSWER, KEY)
    assert not fatourati.verify(signed, fatourati.TOKEN_CANCEL_RESPONSE, KEY)


def test_fatourati_never_signs_a_field_holding_the_separator() -> None:
    for bad in ("1089010000162|PN1|120.00", "a\nb", "\x00", "x" * 256):
        with pytest.raises(ValueError):
            fatourati.sign({"tokenRef": bad, "status": "PAID"}, fatourati.STATUS_ANSWER, KEY)
        assert not fatourati.verify(
            {"tokenRef": bad, "status": "PAID", "signature": "0" * 64}, fatourati.STATUS_ANSWER, KEY
        )


def fatourati_callback(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "tokenRef": "1089010000162",
        "orderId": "PN0123456789AB",
        "totalAmount": "120.00",
        "currency": "504",
        "transactionDate": "2026-11-27T10:00:00+00:00",
        "transactionNumber": "FTR261127000001123",
        "channel": "cih",
        "operator": "CIH Bank",
        "decisionCode": "0",
        "merchantCode": "PORTNET",
        "storeId": "PN001",
    }
    fields = fatourati.signed(fields, fatourati.CALLBACK, KEY)
    fields.update(changes)
    return fields


def test_fatourati_callback_rules() -> None:
    callback = fatourati.read_callback(fatourati_callback(), "PORTNET", "PN001")
    assert callback.paid and callback.total_amount == Decimal("120.00")
    for changes in (
        {"tokenRef": "108901000016"},
        {"tokenRef": "1089010000162|PN0123456789AB"},
        {"orderId": "cih|0"},
        {"orderId": "PN0123456789ab"},
        {"totalAmount": "NaN"},
        {"totalAmount": 120.0},
        {"currency": "840"},
        {"decisionCode": "2"},
        {"merchantCode": "OTHER"},
        {"storeId": ""},
        {"transactionDate": "hier"},
        {"operator": "CIH|Bank"},
        {"signature": "zz"},
        {"extra": "x"},
    ):
        with pytest.raises(MessageRejected):
            fatourati.read_callback(fatourati_callback(**changes), "PORTNET", "PN001")
    missing = fatourati_callback()
    del missing["operator"]
    with pytest.raises(MessageRejected):
        fatourati.read_callback(missing, "PORTNET", "PN001")


def test_fatourati_answers_we_sign_carry_their_status() -> None:
    callback = fatourati.read_callback(fatourati_callback(), "PORTNET", "PN001")
    answer = fatourati.callback_answer(callback, "ACCEPTED", "REC-PN0123456789AB", KEY)
    assert fatourati.verify(answer, fatourati.CALLBACK_ANSWER, KEY)
    assert not fatourati.verify({**answer, "status": "RECEIVED_UNAPPLIED"}, fatourati.CALLBACK_ANSWER, KEY)
    with pytest.raises(ValueError):
        fatourati.callback_answer(callback, "REJECTED", None, KEY)  # refusals are never signed


def cmi_callback(**changes: str) -> dict[str, str]:
    fields = cmi_protocol.build_payment_fields(
        client_id="600000001",
        store_key=KEY,
        oid="PN0123456789AB",
        amount="120.00",
        ok_url="https://p/ok",
        fail_url="https://p/fail",
        shop_url="https://p/shop",
        callback_url="https://p/cb",
        rnd="abc",
        email="a@b.ma",
        bill_to_name="Yassine | Alaoui\n",
    )
    fields.update(
        ProcReturnCode="00", Response="Approved", AuthCode="1", TransId="T1", HostRefNum="1", ErrMsg="",
        mdStatus="1", **{"EXTRA.TRXDATE": "20261127 10:00:00"}, MaskedPan="400000***0010",
    )  # fmt: skip
    fields.update(changes)
    fields["HASH"] = cmi_protocol.compute_hash(fields, KEY)
    return fields


def test_cmi_callback_rules() -> None:
    genuine = cmi_callback()
    assert genuine["BillToName"] == "Yassine Alaoui"  # what we send CMI obeys the rules it comes back under
    callback = cmi_protocol.read_callback(genuine, "600000001")
    assert callback.approved and callback.amount_text == "120.00" and cmi_protocol.verify_hash(genuine, KEY)
    for changes in (
        {"clientid": "600000999"},
        {"currency": "840"},
        {"amount": "-5000.00"},
        {"amount": "NaN"},
        {"oid": "PNNOSUCHORDER"},
        {"ErrMsg": "Refus "},
        {"ErrMsg": "a|b"},
        {"Response": "approved"},
        {"encoding": "utf-8"},
        {"TRANSID": "T2"},
    ):
        with pytest.raises(MessageRejected):
            cmi_protocol.read_callback(cmi_callback(**changes), "600000001")
    # ``encoding`` is outside the hash: without it a callback could be changed unseen, so it is required.
    without = {k: v for k, v in genuine.items() if k != "encoding"}
    assert cmi_protocol.verify_hash(without, KEY)
    with pytest.raises(MessageRejected):
        cmi_protocol.read_callback(without, "600000001")


def test_amanpay_signatures_are_per_message_type() -> None:
    body = amanpay_protocol.dumps({"order_id": "PN0123456789AB", "status": "paid"})
    signature = amanpay_protocol.sign(KEY, amanpay_protocol.Message.ORDER_CANCEL_RESULT, body)
    assert amanpay_protocol.verify(KEY, amanpay_protocol.Message.ORDER_CANCEL_RESULT, body, signature)
    assert not amanpay_protocol.verify(KEY, amanpay_protocol.Message.NOTIFICATION, body, signature)
    assert (
        signature
        == hmac.new(KEY.encode(), b"AMANPAY_ORDER_CANCEL_RESULT\n" + body, hashlib.sha256).hexdigest()
    )


def test_amanpay_notification_rules() -> None:
    genuine = {
        "merchant_id": "PORTNET01",
        "order_id": "PN0123456789AB",
        "amount": "120.00",
        "status": "paid",
        "event_id": "PN0123456789AB-paid",
        "transaction_id": "TSH01",
    }
    assert amanpay_protocol.read_notification(genuine, "PORTNET01").amount == Decimal("120.00")
    for changes in (
        {"merchant_id": "OTHER"},
        {"amount": "999999.000"},
        {"amount": 120},
        {"status": "PAID"},
        {"transaction_id": ""},
        {"paid_at": "demain"},
        {"order_id": "PN0123456789AB\n"},
        {"raw": "x"},
    ):
        with pytest.raises(MessageRejected):
            amanpay_protocol.read_notification({**genuine, **changes}, "PORTNET01")


def test_emitter_ack_names_one_of_our_notices_to_that_emitter() -> None:
    ack = {
        "notice_id": "PN0123456789AB-611MARS001",
        "emitter_code": "611MARS001",
        "emitter_ack_id": "611MARS001-ACK-1",
        "acknowledged_at": "2026-11-27T10:00:00+00:00",
    }
    assert emitter_protocol.read_ack(ack).payment_id == "PN0123456789AB"
    for changes in ({"emitter_code": "ANP"}, {"notice_id": "PAY-77-611MARS001"}, {"acknowledged_at": ""}):
        with pytest.raises(MessageRejected):
            emitter_protocol.read_ack({**ack, **changes})
    body = b'{"notice_id":"x"}'
    notice = emitter_protocol.sign(KEY, emitter_protocol.Message.SETTLEMENT_NOTICE, body)
    assert not emitter_protocol.verify(KEY, emitter_protocol.Message.ACK, body, notice)


def test_bodies_are_read_strictly() -> None:
    for raw in (
        b'{"a":"1","a":"2"}',
        b'{"a":NaN}',
        b"[1]",
        b'{"a":{"b":"c"}}',
        b"[" * 5000,
        b'{"a":"\\ud800"}',
        b"\xff",
    ):
        with pytest.raises(MessageRejected):
            strict_json_object(raw)
    for raw in (b"a=1&A=2", b"a=1&b", b"a=%ff", b"a=1&&b=2"):
        with pytest.raises(MessageRejected):
            strict_form(raw)
    assert strict_form(b"a=1&b=x+y%7C") == {"a": "1", "b": "x y|"}


def test_card_fields_are_never_kept() -> None:
    form = b"oid=PN0123456789AB&p%61n=4000000000000010&CVV=975&MaskedPan=400000***0010"
    kept = without_card_fields(form).decode()
    assert "4000000000000010" not in kept and "975" not in kept and "MaskedPan" in kept
    data = b'{"oid":"PN0123456789AB","\\u0070an":"4000000000000010"}'
    assert b"4000000000000010" not in without_card_fields(data)
    cut = b'{"oid":"PN0123456789AB","pan":"4000000000'
    assert without_card_fields(cut) == b'{"oid":"PN##########AB","pan":"##########'
    harmless = b"oid=PN0123456789AB&BillToName=Pan+Africa&MaskedPan=400000***0010"
    assert without_card_fields(harmless) == harmless
