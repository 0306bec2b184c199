"""HASH ver3 vectors: the sort, the escaping, and the round trip with CMI's callback."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal

from portnet.protocols import cmi as cmi_protocol


def sha512_b64(text: str) -> str:
    return base64.b64encode(hashlib.sha512(text.encode()).digest()).decode()


def test_natural_case_insensitive_order_with_digit_bearing_names() -> None:
    names = ["BillToStreet12", "amount", "BillToStreet2", "billtoname", "AMOUNT2", "Amount10", "clientid"]
    ordered = sorted(names, key=cmi_protocol.natural_key)
    assert ordered == [
        "amount",
        "AMOUNT2",
        "Amount10",
        "billtoname",
        "BillToStreet2",
        "BillToStreet12",
        "clientid",
    ]


def test_plaintext_escapes_backslash_then_pipe_and_trims() -> None:
    fields = {"b": "  x|y ", "a": "c:\\dir", "HASH": "ignored", "encoding": "UTF-8"}
    assert cmi_protocol.hash_plaintext(fields, "k|ey\\") == "c:\\\\dir|x\\|y|k\\|ey\\\\"


def test_known_vector() -> None:
    fields = {
        "clientid": "600000001",
        "oid": "PN0001",
        "amount": "3600.00",
        "currency": "504",
        "BillToStreet12": "Bd | Zerktouni",
        "BillToStreet2": "Maarif\\2",
        "encoding": "UTF-8",
    }
    plaintext = "3600.00|Bd \\| Zerktouni|Maarif\\\\2|600000001|504|PN0001|Store\\|Key|"
    # Names sorted: amount, BillToStreet2, BillToStreet12, clientid, currency, oid
    plaintext = "3600.00|Maarif\\\\2|Bd \\| Zerktouni|600000001|504|PN0001|Store\\|Key"
    assert cmi_protocol.hash_plaintext(fields, "Store|Key") == plaintext
    assert cmi_protocol.compute_hash(fields, "Store|Key") == sha512_b64(plaintext)


def test_build_fields_is_verifiable_and_tamper_evident() -> None:
    fields = cmi_protocol.build_payment_fields(
        client_id="600000001",
        store_key="key",
        oid="PN1",
        amount=Decimal("5284.8"),
        ok_url="https://p/ok",
        fail_url="https://p/fail",
        shop_url="https://p/shop",
        callback_url="https://p/cb",
        rnd="abc",
        email="a@b.ma",
        bill_to_name="TMTA",
        bill_to_company="TMTA SARL",
        tel="0522000000",
    )
    assert fields["amount"] == "5284.80"
    assert fields["currency"] == "504" and fields["storetype"] == "3D_PAY_HOSTING"
    assert cmi_protocol.verify_hash(fields, "key")
    assert not cmi_protocol.verify_hash(fields, "other-key")
    tampered = dict(fields, amount="1.00")
    assert not cmi_protocol.verify_hash(tampered, "key")
    assert not cmi_protocol.verify_hash({k: v for k, v in fields.items() if k != "HASH"}, "key")


def test_session_timeout_is_clamped_to_cmi_bounds() -> None:
    common = dict(
        client_id="1",
        store_key="k",
        oid="o",
        amount="1.00",
        ok_url="u",
        fail_url="u",
        shop_url="u",
        callback_url="u",
        rnd="r",
        email="e@x.ma",
        bill_to_name="n",
    )
    assert cmi_protocol.build_payment_fields(**common, session_timeout=5)["sessionTimeout"] == "30"
    assert cmi_protocol.build_payment_fields(**common, session_timeout=99999)["sessionTimeout"] == "2700"


def test_approval_needs_code_00_and_approved_response() -> None:
    assert cmi_protocol.is_approved({"ProcReturnCode": "00", "Response": "Approved"})
    assert not cmi_protocol.is_approved({"ProcReturnCode": "05", "Response": "Declined"})
    assert not cmi_protocol.is_approved({"ProcReturnCode": "00", "Response": "Error"})
