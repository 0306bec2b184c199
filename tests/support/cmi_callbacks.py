"""A CMI server-to-server callback as the bank signs it, for a given order and transaction."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from portnet.protocols import cmi as cmi_protocol
from portnet.settings import get_settings


def card_callback(payment_id: str, trans_id: str, approved: bool = True) -> bytes:
    s = get_settings()
    fields = cmi_protocol.build_payment_fields(
        client_id=s.cmi_client_id,
        store_key=s.cmi_store_key,
        oid=payment_id,
        amount="120.00",
        ok_url="https://portnet.test/ok",
        fail_url="https://portnet.test/fail",
        shop_url="https://portnet.test/shop",
        callback_url="https://portnet.test/api/v1/callbacks/cmi",
        rnd=secrets.token_hex(10),
        email="tresorerie@sataa.ma",
        bill_to_name="Yassine Alaoui",
    )
    fields.update(
        {
            "ProcReturnCode": "00" if approved else "05",
            "Response": "Approved" if approved else "Declined",
            "AuthCode": "123456" if approved else "",
            "TransId": trans_id,
            "HostRefNum": "263311234567",
            "ErrMsg": "" if approved else "Transaction refusée",
            "mdStatus": "1",
            "EXTRA.TRXDATE": "20261127 10:15:00",
            "MaskedPan": "400000***0010",
        }
    )
    fields["HASH"] = cmi_protocol.compute_hash(fields, s.cmi_store_key)
    return urlencode(fields).encode()
