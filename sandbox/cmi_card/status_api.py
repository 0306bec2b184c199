"""CMI's XML API (``/fim/api``): the order status query a merchant makes after a lost callback.

A ``CC5Request`` with ``Name``, ``Password``, ``ClientId``, ``OrderId`` and
``<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>`` is answered with a ``CC5Response`` listing
the order's transactions, as Nestpay (the EST gateway CMI runs) does: authorised only (``A``),
captured (``C``) or declined (``D``).
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET  # noqa: S405 - only to build and read small trusted-shape documents
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portnet.settings import Settings
from sandbox.cmi_card.orders import Attempt, Order
from sandbox.cmi_card.rules import get_field
from sandbox.context import sandbox_of

router = APIRouter()


def _xml_response(values: Mapping[str, str], extra: Mapping[str, str], status_code: int = 200) -> Response:
    root = ET.Element("CC5Response")
    for name, text in values.items():
        ET.SubElement(root, name).text = text
    extra_node = ET.SubElement(root, "Extra")
    for name, text in extra.items():
        ET.SubElement(extra_node, name).text = text
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return Response(body, status_code=status_code, media_type="application/xml")


def _xml_error(message: str, order_id: str = "", status_code: int = 200) -> Response:
    values = {"OrderId": order_id, "Response": "Error", "ProcReturnCode": "99", "ErrMsg": message}
    return _xml_response(values, {}, status_code)


def _credentials_ok(settings: Settings, name: str, password: str) -> bool:
    """Settings has no API user yet: if ``cmi_api_name``/``cmi_api_password`` appear, they are enforced."""
    expected_name = str(getattr(settings, "cmi_api_name", "") or "")
    expected_password = str(getattr(settings, "cmi_api_password", "") or "")
    if not name or not password:
        return False
    name_ok = not expected_name or hmac.compare_digest(name.encode(), expected_name.encode())
    password_ok = not expected_password or hmac.compare_digest(password.encode(), expected_password.encode())
    return name_ok and password_ok


def _trans_stat(attempt: Attempt) -> str:
    if not attempt.approved:
        return "D"
    return "C" if attempt.captured else "A"


def order_history(order: Order) -> Response:
    if not order.attempts:
        values = {
            "OrderId": order.oid,
            "Response": "Error",
            "ProcReturnCode": "99",
            "ErrMsg": "Aucune transaction.",
        }
        return _xml_response(values, {"TRXCOUNT": "0"})
    summary = order.approved_attempt or order.attempts[-1]
    amount = get_field(order.fields, "amount") or ""
    values = {
        "OrderId": order.oid,
        "Response": summary.decision.response,
        "AuthCode": summary.auth_code,
        "HostRefNum": summary.host_ref_num,
        "ProcReturnCode": summary.decision.proc_return_code,
        "TransId": summary.trans_id,
        "ErrMsg": summary.decision.err_msg,
    }
    extra = {
        "TRXCOUNT": str(len(order.attempts)),
        "TRANS_STAT": _trans_stat(summary),
        "TRX_DATE": summary.trx_date,
        "ORIG_TRANS_AMT": amount,
        "CAPTURE_AMT": amount if summary.captured else "0.00",
    }
    for number, attempt in enumerate(order.attempts, start=1):
        # Nestpay lists each transaction as tab-separated columns.
        extra[f"TRX{number}"] = "\t".join(
            (
                attempt.trans_id,
                attempt.decision.response,
                attempt.decision.proc_return_code,
                amount,
                attempt.trx_date,
                attempt.auth_code,
                _trans_stat(attempt),
            )
        )
    return _xml_response(values, extra)


@router.post("/fim/api", name="cmi_api")
async def status_query(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raw = str((await request.form()).get("DATA") or "").encode()  # Nestpay also accepts DATA=<xml>
    else:
        raw = await request.body()
    if b"<!" in raw:  # no DTD, no entities: the stdlib parser would expand them
        return _xml_error("Document XML refusé (DTD interdite).", status_code=400)
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs are refused above
    except ET.ParseError:
        return _xml_error("Requête XML illisible.", status_code=400)
    if root.tag != "CC5Request":
        return _xml_error("Élément racine CC5Request attendu.", status_code=400)

    def text(path: str) -> str:
        return (root.findtext(path) or "").strip()

    order_id = text("OrderId")
    if not _credentials_ok(sandbox.settings, text("Name"), text("Password")):
        return _xml_error("Identifiants API invalides.", order_id)
    if text("ClientId") != sandbox.settings.cmi_client_id:
        return _xml_error("ClientId inconnu.", order_id)
    if text("Extra/ORDERHISTORY").upper() != "QUERY":
        return _xml_error("Seule la requête ORDERHISTORY=QUERY est prise en charge.", order_id)
    order = await sandbox.store.call(lambda tx: tx.get(Order, order_id)) if order_id else None
    if order is None:
        return _xml_error("Commande introuvable.", order_id)
    return order_history(order)
