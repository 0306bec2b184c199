"""CMI Fatourati's signature, as we compute it and as the sandbox (which may not import ours) does."""

from __future__ import annotations

from portnet.protocols import fatourati as proto
from sandbox import fatourati as sandbox_fatourati


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
