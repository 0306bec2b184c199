"""Issue 4's pure rules: the subscription renewal date, the signatures, the payer's declaration."""

from __future__ import annotations

from datetime import date

import pytest

from activities.cheque_transfer import renewed_end
from portnet.protocols import fatourati as proto
from portnet.statuses import Channel
from sandbox import fatourati as sandbox_fatourati
from web.channel_inputs import DeclarationError, declaration_for


def test_renewal_counts_from_the_later_of_today_and_the_current_end() -> None:
    today = date(2026, 11, 27)
    assert renewed_end(date(2026, 12, 31), today) == date(2027, 12, 31)  # early payer loses no day
    assert renewed_end(date(2025, 6, 30), today) == date(2027, 11, 27)  # lapsed: from today
    assert renewed_end(None, today) == date(2027, 11, 27)
    assert renewed_end(date(2028, 2, 29), today) == date(2029, 2, 28)


def test_signature_is_hmac_sha256_hex_over_the_joined_fields_and_key() -> None:
    import hashlib
    import hmac

    fields = {"merchantCode": "PORTNET", "storeId": "PN001", "tokenRef": "1089010000162"}
    signed_text = b"FATOURATI_TOKEN_CANCEL|PORTNET|PN001|1089010000162|K|y"
    expected = hmac.new(b"K|y", signed_text, hashlib.sha256).hexdigest()
    assert proto.sign(fields, proto.TOKEN_CANCEL, "K|y") == expected
    assert proto.verify({**fields, "signature": expected.upper()}, proto.TOKEN_CANCEL, "K|y")
    assert not proto.verify(
        {**fields, "tokenRef": "1089010000163", "signature": expected}, proto.TOKEN_CANCEL, "K|y"
    )
    # The sandbox signs exactly as we verify (it may not import our module).
    assert sandbox_fatourati.sign(fields, sandbox_fatourati.TOKEN_CANCEL, "K|y") == expected


def test_declarations() -> None:
    today = date(2026, 11, 27)
    assert declaration_for(Channel.CHEQUE, {"cheque_number": "0012345", "bank": "CIH"}, today) == {
        "cheque_number": "0012345",
        "bank": "CIH",
    }
    assert declaration_for(
        Channel.BANK_TRANSFER, {"transfer_reference": "VIR 2026/11", "transfer_date": "2026-11-26"}, today
    ) == {"transfer_reference": "VIR 2026/11", "transfer_date": "2026-11-26"}
    assert declaration_for(Channel.CMI_FATOURATI, {"x": "y"}, today) is None
    for channel, bad in [
        (Channel.CHEQUE, {"cheque_number": "1", "bank": "CIH"}),
        (Channel.CHEQUE, {"cheque_number": "123456", "bank": ""}),
        (Channel.BANK_TRANSFER, {"transfer_reference": "VIR-1", "transfer_date": "2026-12-01"}),
        (Channel.BANK_TRANSFER, {"transfer_reference": "VIR-1", "transfer_date": "hier"}),
    ]:
        with pytest.raises(DeclarationError):
            declaration_for(channel, bad, today)
