"""The sandbox's HASH ver3 (the bank's side) against partners.md and against our own implementation."""

from __future__ import annotations

import base64
import hashlib
import random
import string

from portnet.protocols import cmi as cmi_protocol
from sandbox import cmi_hash


def test_natural_order_compares_digit_runs_as_numbers_ignoring_case() -> None:
    names = ["BillToStreet12", "billtostreet2", "BillToStreet1", "amount", "Amount10x", "AMOUNT9x", "a", "a0"]
    assert cmi_hash.sorted_names(names) == [
        "a",
        "a0",
        "amount",
        "AMOUNT9x",
        "Amount10x",
        "BillToStreet1",
        "billtostreet2",
        "BillToStreet12",
    ]


def test_signed_text_escapes_backslash_then_pipe_and_trims_values() -> None:
    fields = {
        "oid": "  A|B  ",
        "amount": "10.00",
        "BillToName": "C:\\dir\\|x",
        "HASH": "ignored",
        "encoding": "UTF-8",
        "Field2": "two",
        "Field10": "ten",
    }
    text = cmi_hash.signed_text(fields, "key|\\")
    assert text == "10.00|C:\\\\dir\\\\\\|x|two|ten|A\\|B|key\\|\\\\"
    expected = base64.b64encode(hashlib.sha512(text.encode()).digest()).decode()
    assert cmi_hash.sign(fields, "key|\\") == expected


def test_check_accepts_the_right_hash_only() -> None:
    fields = {"oid": "1", "amount": "5.00", "encoding": "UTF-8"}
    fields["HASH"] = cmi_hash.sign(fields, "k")
    assert cmi_hash.check(fields, "k")
    assert not cmi_hash.check(fields, "other")
    assert not cmi_hash.check({**fields, "amount": "6.00"}, "k")
    # encoding is not signed: changing it does not matter.
    assert cmi_hash.check({**fields, "encoding": "ISO-8859-1"}, "k")
    assert not cmi_hash.check({k: v for k, v in fields.items() if k != "HASH"}, "k")


def test_agrees_with_our_implementation_on_random_forms() -> None:
    rng = random.Random(20260101)
    alphabet = string.ascii_letters + string.digits + " |\\.-_éà"
    for _ in range(300):
        fields = {}
        for _ in range(rng.randint(1, 12)):
            name = rng.choice(["BillToStreet", "field", "Amount", "x", "EXTRA.", "ok"]) + rng.choice(
                ["", str(rng.randint(0, 120)), rng.choice(string.ascii_letters)]
            )
            fields[name] = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
        key = "".join(rng.choice(string.ascii_letters + "|\\") for _ in range(16))
        assert cmi_hash.sign(fields, key) == cmi_protocol.compute_hash(fields, key)
        fields["HASH"] = cmi_protocol.compute_hash(fields, key)
        assert cmi_hash.check(fields, key)
        assert cmi_protocol.verify_hash({**fields, "HASH": cmi_hash.sign(fields, key)}, key)
