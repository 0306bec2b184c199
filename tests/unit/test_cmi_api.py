"""CMI's XML API as our side reads it: every element held to its rule before anything is used."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from portnet.protocols import cmi_api
from portnet.protocols.fields import MessageRejected

OID = "PN0123456789AB"


def history(*lines: str, order_id: str = OID, count: str | None = None, **extra: str) -> bytes:
    rows = "".join(f"<TRX{i}>{line}</TRX{i}>" for i, line in enumerate(lines, start=1))
    more = "".join(f"<{name}>{value}</{name}>" for name, value in extra.items())
    return (
        f"<CC5Response><OrderId>{order_id}</OrderId><Response>Approved</Response><AuthCode>614207</AuthCode>"
        "<HostRefNum>263330418822</HostRefNum><ProcReturnCode>00</ProcReturnCode><TransId>26333A00001</TransId>"
        f"<ErrMsg></ErrMsg><Extra><TRXCOUNT>{count or len(lines)}</TRXCOUNT>{rows}{more}</Extra>"
        "</CC5Response>"
    ).encode()


APPROVED_LINE = "26333A00001\tApproved\t00\t120.00\t20261129 10:42:17\t614207\t{}"
DECLINED_LINE = "26333D00001\tDeclined\t05\t120.00\t20261129 10:41:02\t\tD"


def test_requests_carry_the_api_user_and_our_order() -> None:
    root = ET.fromstring(cmi_api.order_history_request("api", "pw", "600000001", OID))  # noqa: S314
    assert [c.tag for c in root] == ["Name", "Password", "ClientId", "OrderId", "Extra"]
    assert root.findtext("Extra/ORDERHISTORY") == "QUERY" and root.findtext("OrderId") == OID
    capture = ET.fromstring(cmi_api.post_auth_request("api", "pw", "600000001", OID))  # noqa: S314
    assert capture.findtext("Type") == "PostAuth" and capture.find("Total") is None
    with pytest.raises(ValueError):
        cmi_api.post_auth_request("api", "pw", "600000001", "PN0123456789AB</OrderId>")
    with pytest.raises(ValueError):
        cmi_api.order_history_request("api", "", "600000001", OID)


@pytest.mark.parametrize("state", ["A", "C", "V"])
def test_state_of_the_approved_transaction(state: str) -> None:
    answer = cmi_api.read_answer(history(DECLINED_LINE, APPROVED_LINE.format(state)), OID)
    assert answer.state_of("26333A00001") == state
    assert answer.state_of("26333D00001") == cmi_api.DECLINED
    assert answer.state_of("26333OTHER1") is None


def test_unknown_order_is_an_empty_history_and_a_request_error_no_history() -> None:
    unknown = (
        b"<CC5Response><OrderId>PN0123456789AB</OrderId><Response>Error</Response>"
        b"<ProcReturnCode>99</ProcReturnCode><ErrMsg>Commande introuvable.</ErrMsg>"
        b"<Extra><TRXCOUNT>0</TRXCOUNT></Extra></CC5Response>"
    )
    assert cmi_api.read_answer(unknown, OID).transactions == ()
    refused = (
        b"<CC5Response><OrderId></OrderId><Response>Error</Response><ProcReturnCode>99</ProcReturnCode>"
        b"<ErrMsg>Identifiants API invalides.</ErrMsg><Extra/></CC5Response>"
    )
    answer = cmi_api.read_answer(refused, OID)
    assert answer.transactions is None and not answer.approved and answer.oid == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (history(APPROVED_LINE.format("C"), order_id="PN999999999999"), "OrderId"),
        (history(APPROVED_LINE.format("X")), "TRX1"),
        (history(APPROVED_LINE.format("C").replace("120.00", "-1")), "TRX1"),
        (history(APPROVED_LINE.format("C").replace("\t614207", "")), "TRX1"),
        (history(APPROVED_LINE.format("C"), count="2"), "TRXCOUNT"),
        (history(APPROVED_LINE.format("C"), SURPRISE="1"), "'SURPRISE'"),
        (history(APPROVED_LINE.format("C"), TRANS_STAT="Z"), "TRANS_STAT"),
        (history(APPROVED_LINE.format("C")).replace(b"<ErrMsg></ErrMsg>", b"<ErrMsg>a|b</ErrMsg>"), "ErrMsg"),
        (
            history(APPROVED_LINE.format("C")).replace(b"<ErrMsg></ErrMsg>", b"<TransId>x</TransId>"),
            "TransId",
        ),
        (history(APPROVED_LINE.format("C")).replace(b"Approved</Response>", b"OK</Response>"), "Response"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><CC5Response/>', "body"),
        (b"<CC5Request/>", "body"),
        (b"not xml", "body"),
    ],
)
def test_an_answer_breaking_a_rule_is_no_answer(body: bytes, field: str) -> None:
    with pytest.raises(MessageRejected) as rejected:
        cmi_api.read_answer(body, OID)
    assert rejected.value.field == field


def test_post_auth_answer() -> None:
    done = (
        b"<CC5Response><OrderId>PN0123456789AB</OrderId><Response>Approved</Response>"
        b"<ProcReturnCode>00</ProcReturnCode><TransId>26333PSTA00001</TransId><ErrMsg></ErrMsg><Extra/>"
        b"</CC5Response>"
    )
    answer = cmi_api.read_answer(done, OID)
    assert answer.approved and answer.trans_id == "26333PSTA00001" and answer.transactions is None
    refused = done.replace(b"Approved", b"Error").replace(b">00<", b">99<")
    assert not cmi_api.read_answer(refused, OID).approved
