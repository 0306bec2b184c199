"""Genuine signed messages of every partner, mutated anywhere: never accepted, never a 5xx, nothing
written but the rejected callback's own row.

For each partner a genuine message for a live attempt is built with the real keys and shown to be
accepted first (so the checks below can fail). Then hypothesis changes one thing: a field's value
(any text, a number, NaN, null...), a field removed, added or renamed, a separator or control
character slipped into a field, two joined fields packed into one (the signing-oracle trick), the
body cut or padded, or the signature replaced (random, another key, the same message signed as
another message type, the old unlabelled scheme). After each call: the answer is a refusal below
500, nothing reached Temporal, the payment, its invoice and the unapplied payments are as before,
and exactly one callback row was added, judged ``malformed`` or ``bad_signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, col, select

from portnet.models import (
    Invoice,
    PartnerCallback,
    Payment,
    PaymentChannelData,
    UnappliedPayment,
)
from portnet.protocols import amanpay as amanpay_protocol
from portnet.protocols import cmi as cmi_protocol
from portnet.protocols import emitter as emitter_protocol
from portnet.protocols import fatourati as fatourati
from portnet.settings import get_settings
from tests.support.partners import Ledger, Portal, RecordingTemporal

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REJECTED = {"malformed", "bad_signature"}


@dataclass
class Genuine:
    """One partner's genuine message and how to send it, mutated or not."""

    path: str
    fields: dict[str, Any]
    # form: fields url-encoded, signature in a field; json: fields as JSON, signature in a field;
    # signed-body: fields as JSON, signature of the raw body in a header.
    shape: str
    signature: str  # the field (form, json) or header (signed-body) holding it
    signing_order: tuple[str, ...] = ()  # fields joined with a separator in what is signed
    other_signatures: list[str] = field(default_factory=list)
    recorded: bool = True  # the endpoint keeps a partnercallback row
    header_signature: str = ""  # signed-body: the genuine body's signature

    def encode(self, fields: dict[str, Any], header: str | None = None) -> tuple[bytes, dict[str, str]]:
        if self.shape == "form":
            return urlencode({k: str(v) for k, v in fields.items()}).encode(), {
                "Content-Type": "application/x-www-form-urlencoded"
            }
        if self.shape == "json":
            return json.dumps(fields).encode(), {"Content-Type": "application/json"}
        body = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
        return body, {
            "Content-Type": "application/json",
            self.signature: self.header_signature if header is None else header,
        }


def _snapshot(db: Session, ledger: Ledger) -> tuple[Any, ...]:
    db.expire_all()
    payment = db.get(Payment, ledger.payment_id)
    invoice = db.get(Invoice, ledger.invoice_id)
    assert payment is not None and invoice is not None
    unapplied = db.exec(select(func.count()).select_from(UnappliedPayment)).one()
    last = db.exec(select(func.max(col(PartnerCallback.id)))).one() or 0
    return payment.status, payment.updated_at, invoice.status, unapplied, last


# --- the mutations -----------------------------------------------------------------------------------

TRICKY_VALUES = [
    "",
    " ",
    "|",
    "NaN",
    "Infinity",
    "-5000.00",
    "999999.00",
    "1e3",
    "0",
    "0.00",
    "120.001",
    "504",
    "840",
    "PN000000000000",
    "x" * 300,
    "\u2028",
]
SEPARATORS = ["|", "\n", "\r", "\x00", "\t", "\x7f", "\x85", "\u2028"]
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
any_value = st.one_of(
    text,
    st.sampled_from(TRICKY_VALUES),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
names = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
    st.sampled_from(["hash", "Hash", "SIGNATURE", "Amount", "AMOUNT", "pan", "status", "operator2", "oid "]),
)


def _differs(case: Genuine, name: str, value: Any) -> bool:
    original = case.fields.get(name)
    if case.shape == "form":
        value = str(value)
    if name == case.signature and isinstance(value, str) and isinstance(original, str):
        return value.lower() != original.lower()  # hex signatures are read in either case
    return value != original or type(value) is not type(original)


def _same_message(case: Genuine, body: bytes) -> bool:
    """True when a changed body still reads as the genuine fields (signature compared in any case)."""
    try:
        if case.shape == "form":
            parsed: dict[str, Any] = {
                k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()
            }
            wanted: dict[str, Any] = {k: str(v) for k, v in case.fields.items()}
        else:
            parsed, wanted = json.loads(body), dict(case.fields)
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(parsed, dict) or set(parsed) != set(wanted):
        return False
    signature = case.signature
    if isinstance(parsed.get(signature), str) and isinstance(wanted.get(signature), str):
        parsed[signature], wanted[signature] = parsed[signature].lower(), wanted[signature].lower()
    return parsed == wanted


def mutate(case: Genuine, data: st.DataObject) -> tuple[bytes, dict[str, str]]:
    fields = dict(case.fields)
    keys = sorted(fields)
    op = data.draw(
        st.sampled_from(["replace", "delete", "add", "rename", "separator", "pack", "body", "signature"]),
        label="mutation",
    )
    header: str | None = None
    if op == "replace":
        name = data.draw(st.sampled_from(keys), label="field")
        value = data.draw(any_value, label="value")
        assume(_differs(case, name, value))
        fields[name] = value
    elif op == "delete":
        del fields[data.draw(st.sampled_from(keys), label="field")]
    elif op == "add":
        name = data.draw(names, label="name")
        assume(name not in fields)
        fields[name] = data.draw(any_value, label="value")
    elif op == "rename":
        old = data.draw(st.sampled_from(keys), label="field")
        new = data.draw(st.one_of(names, st.just(old.upper()), st.just(old.lower())), label="name")
        assume(new not in fields)
        fields[new] = fields.pop(old)
    elif op == "separator":
        name = data.draw(st.sampled_from(keys), label="field")
        value = str(fields[name])
        at = data.draw(st.integers(0, len(value)), label="at")
        fields[name] = value[:at] + data.draw(st.sampled_from(SEPARATORS), label="separator") + value[at:]
    elif op == "pack":
        # Two neighbours in the signed string become one field holding the separator, and the next
        # one empty: the shape of the Fatourati signing-oracle attack.
        order = case.signing_order or tuple(keys)
        i = data.draw(st.integers(0, len(order) - 2), label="at")
        first, second = order[i], order[i + 1]
        if first in fields and second in fields:
            fields[first] = f"{fields[first]}|{fields[second]}"
            fields[second] = ""
    elif op == "body":
        body, headers = case.encode(fields)
        how = data.draw(st.sampled_from(["cut", "pad", "flip"]), label="how")
        if how == "cut":
            body = body[: data.draw(st.integers(0, len(body) - 1), label="at")]
        elif how == "pad":
            body = body + data.draw(st.binary(min_size=1, max_size=20), label="pad")
        else:
            at = data.draw(st.integers(0, len(body) - 1), label="at")
            body = (
                body[:at] + bytes([body[at] ^ data.draw(st.integers(1, 255), label="xor")]) + body[at + 1 :]
            )
        # Whitespace after a JSON document, or a hex letter of a field-carried signature flipped in
        # case, leaves the same message: that is no mutation (the raw-body signature still sees it).
        assume(case.shape == "signed-body" or not _same_message(case, body))
        return body, headers
    else:
        forged = data.draw(
            st.one_of(
                st.sampled_from(case.other_signatures),
                st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
                # a header carries printable ASCII only
                st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=90)
                if case.shape == "signed-body"
                else text,
            ),
            label="signature",
        )
        if case.shape == "signed-body":
            assume(forged.lower() != case.header_signature)
            header = forged
        else:
            assume(_differs(case, case.signature, forged))
            fields[case.signature] = forged
    return case.encode(fields, header)


def not_accepted(case: Genuine, response: httpx.Response) -> bool:
    if case.shape == "form":  # CMI: only ACTION=POSTAUTH captures
        return bool(response.text != "ACTION=POSTAUTH")
    return bool(response.status_code != 200)


def check(client: Portal, db: Session, ledger: Ledger, case: Genuine, data: st.DataObject) -> None:
    temporal: RecordingTemporal = client.app.state.temporal
    before = _snapshot(db, ledger)
    body, headers = mutate(case, data)
    response = client.post(case.path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    assert not_accepted(case, response), (response.status_code, response.text)
    assert temporal.calls == []
    after = _snapshot(db, ledger)
    assert after[:4] == before[:4]
    rows = db.exec(select(PartnerCallback).where(col(PartnerCallback.id) > before[4])).all()
    if case.recorded:
        assert [r.verdict in REJECTED for r in rows] == [True], [(r.verdict, r.answer) for r in rows]
        # Filed under the order id it claims, if that id is well formed (ours or a forged one).
        assert rows[0].payment_id is None or re.fullmatch(r"PN[0-9A-F]{12}", rows[0].payment_id)
    else:
        assert rows == []


def accepted_once(client: Portal, case: Genuine) -> None:
    """The unmutated message goes through, so a refusal below is the mutation's doing."""
    temporal: RecordingTemporal = client.app.state.temporal
    body, headers = case.encode(case.fields)
    response = client.post(case.path, content=body, headers=headers)
    assert response.status_code == 200 and not not_accepted(case, response), response.text
    if case.recorded:
        assert len(temporal.calls) == 1
    temporal.calls.clear()


# --- fixtures: a live attempt and its genuine message, per partner -----------------------------------


def _fatourati_signatures(fields: dict[str, Any], own: fatourati.MessageType) -> list[str]:
    key = get_settings().fatourati_api_key
    others = [
        fatourati.sign(fields, message, key)
        for message in (
            fatourati.TOKEN_REQUEST,
            fatourati.TOKEN_RESPONSE,
            fatourati.TOKEN_CANCEL,
            fatourati.TOKEN_CANCEL_RESPONSE,
            fatourati.CALLBACK,
            fatourati.CALLBACK_ANSWER,
            fatourati.STATUS_REQUEST,
            fatourati.STATUS_ANSWER,
        )
        if message != own
    ]
    unlabelled = "|".join([*(str(fields.get(n, "")) for n in own.fields), key])
    others.append(hmac.new(key.encode(), unlabelled.encode(), hashlib.sha256).hexdigest())
    others.append(fatourati.sign(fields, own, "not-the-key"))
    return others


@pytest.fixture
def fatourati_reference(db: Session, ledger: Ledger) -> str:
    reference = "1089" + f"{secrets.randbelow(10**9):09d}"
    db.add(PaymentChannelData(payment_id=ledger.payment_id, partner_reference=reference))
    db.commit()
    return reference


def test_cmi_callback_mutations(client: Portal, db: Session, ledger: Ledger) -> None:
    s = get_settings()
    fields: dict[str, Any] = cmi_protocol.build_payment_fields(
        client_id=s.cmi_client_id,
        store_key=s.cmi_store_key,
        oid=ledger.payment_id,
        amount="120.00",
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
            "TransId": "26331ABCD12345",
            "HostRefNum": "263311234567",
            "ErrMsg": "",
            "mdStatus": "1",
            "EXTRA.TRXDATE": "20261127 10:15:00",
            "MaskedPan": "400000***0010",
        }
    )
    fields["HASH"] = cmi_protocol.compute_hash(fields, s.cmi_store_key)
    without_tel = {k: v for k, v in fields.items() if k != "tel"}
    case = Genuine(
        "/api/v1/callbacks/cmi",
        fields,
        "form",
        "HASH",
        other_signatures=[
            cmi_protocol.compute_hash(fields, "not-the-key"),
            cmi_protocol.compute_hash(without_tel, s.cmi_store_key),
        ],
    )
    accepted_once(client, case)

    @EXAMPLES
    @given(data=st.data())
    def mutated(data: st.DataObject) -> None:
        check(client, db, ledger, case, data)

    mutated()


def test_fatourati_callback_mutations(
    client: Portal, db: Session, ledger: Ledger, fatourati_reference: str
) -> None:
    s = get_settings()
    fields: dict[str, Any] = {
        "tokenRef": fatourati_reference,
        "orderId": ledger.payment_id,
        "totalAmount": "120.00",
        "currency": "504",
        "transactionDate": datetime.now(UTC).isoformat(),
        "transactionNumber": "FTR261127000001123",
        "channel": "cih",
        "operator": "CIH Bank",
        "decisionCode": "0",
        "merchantCode": s.fatourati_merchant_code,
        "storeId": s.fatourati_store_id,
    }
    others = _fatourati_signatures(fields, fatourati.CALLBACK)
    fields = fatourati.signed(fields, fatourati.CALLBACK, s.fatourati_api_key)
    case = Genuine(
        "/api/v1/callbacks/fatourati",
        fields,
        "json",
        "signature",
        signing_order=fatourati.CALLBACK.fields,
        other_signatures=others,
    )
    accepted_once(client, case)

    @EXAMPLES
    @given(data=st.data())
    def mutated(data: st.DataObject) -> None:
        check(client, db, ledger, case, data)

    mutated()


def test_fatourati_status_request_mutations(
    client: Portal, db: Session, ledger: Ledger, fatourati_reference: str
) -> None:
    s = get_settings()
    fields: dict[str, Any] = {
        "merchantCode": s.fatourati_merchant_code,
        "storeId": s.fatourati_store_id,
        "tokenRef": fatourati_reference,
    }
    others = _fatourati_signatures(fields, fatourati.STATUS_REQUEST)
    fields = fatourati.signed(fields, fatourati.STATUS_REQUEST, s.fatourati_api_key)
    case = Genuine(
        "/api/v1/callbacks/fatourati/status",
        fields,
        "json",
        "signature",
        signing_order=fatourati.STATUS_REQUEST.fields,
        other_signatures=others,
        recorded=False,
    )
    accepted_once(client, case)

    @EXAMPLES
    @given(data=st.data())
    def mutated(data: st.DataObject) -> None:
        check(client, db, ledger, case, data)

    mutated()


def test_amanpay_notification_mutations(client: Portal, db: Session, ledger: Ledger) -> None:
    s = get_settings()
    fields: dict[str, Any] = {
        "merchant_id": s.amanpay_merchant_id,
        "order_id": ledger.payment_id,
        "amount": "120.00",
        "method": "code",
        "status": "paid",
        "transaction_id": "TSH1A2B3C4D5E",
        "paid_at": "2026-11-27T10:15:00+00:00",
        "event_id": f"{ledger.payment_id}-paid",
        "channel": "tashilat",
    }
    body = amanpay_protocol.dumps(fields)
    key = s.amanpay_secret_key
    Message = amanpay_protocol.Message
    case = Genuine(
        "/api/v1/callbacks/amanpay",
        fields,
        "signed-body",
        amanpay_protocol.AMANPAY_HEADER,
        header_signature=amanpay_protocol.sign(key, Message.NOTIFICATION, body),
        other_signatures=[
            *(amanpay_protocol.sign(key, m, body) for m in Message if m != Message.NOTIFICATION),
            hmac.new(key.encode(), body, hashlib.sha256).hexdigest(),  # the old, unlabelled scheme
            amanpay_protocol.sign(s.paydirect_secret_key, Message.NOTIFICATION, body),
        ],
    )
    accepted_once(client, case)

    @EXAMPLES
    @given(data=st.data())
    def mutated(data: st.DataObject) -> None:
        check(client, db, ledger, case, data)

    mutated()


def test_emitter_ack_mutations(client: Portal, db: Session, ledger: Ledger) -> None:
    s = get_settings()
    fields: dict[str, Any] = {
        "notice_id": f"{ledger.payment_id}-611MARS001",
        "emitter_code": "611MARS001",
        "emitter_ack_id": "611MARS001-ACK-0A1B2C3D4E5F",
        "acknowledged_at": "2026-11-27T10:20:00+00:00",
    }
    body = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    key = s.emitter_shared_key
    Message = emitter_protocol.Message
    case = Genuine(
        "/api/v1/callbacks/emitters/ack",
        fields,
        "signed-body",
        emitter_protocol.SIGNATURE_HEADER,
        header_signature=emitter_protocol.sign(key, Message.ACK, body),
        other_signatures=[
            emitter_protocol.sign(key, Message.SETTLEMENT_NOTICE, body),
            hmac.new(key.encode(), body, hashlib.sha256).hexdigest(),
            emitter_protocol.sign("not-the-key", Message.ACK, body),
        ],
    )
    accepted_once(client, case)

    @EXAMPLES
    @given(data=st.data())
    def mutated(data: st.DataObject) -> None:
        check(client, db, ledger, case, data)

    mutated()
