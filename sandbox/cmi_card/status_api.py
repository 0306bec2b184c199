"""CMI's XML API (``/fim/api``): the order status query and the capture of an authorisation.

A ``CC5Request`` with ``Name``, ``Password``, ``ClientId``, ``OrderId`` and
``<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>`` is answered with a ``CC5Response`` listing
the order's transactions, as Nestpay (the EST gateway CMI runs) does: authorised only (``A``),
captured (``C``) or declined (``D``); ``TRXCOUNT`` is 0 for an order the bank does not know.

``<Type>PostAuth</Type>`` captures the order's authorisation that the merchant's callback answer
never confirmed: once. A second PostAuth, or one on an order without an authorisation, is refused
(``Error``, ``ProcReturnCode`` 99, the order id echoed); ``Total`` other than the authorised amount
is refused too (no partial capture here). A request the bank cannot take at all (credentials,
client id, document) is refused without echoing the order id.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET  # noqa: S405 - only to build and read small trusted-shape documents
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portnet.settings import Settings
from sandbox.cmi_card.orders import ApiCapture, Attempt, Order, new_trans_id, now_in_morocco
from sandbox.cmi_card.rules import get_field
from sandbox.context import Sandbox, sandbox_of
from sandbox.store import Tx

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
    """The API user (``cmi_api_name``/``cmi_api_password``), compared in constant time."""
    name_ok = hmac.compare_digest(name.encode(), settings.cmi_api_name.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.cmi_api_password.encode())
    return bool(name and password) and name_ok and password_ok


def _trans_stat(attempt: Attempt) -> str:
    if not attempt.approved:
        return "D"
    return "C" if attempt.captured else "A"


def order_history(order: Order | None, order_id: str) -> Response:
    if order is None or not order.attempts:
        values = {
            "OrderId": order_id,
            "Response": "Error",
            "ProcReturnCode": "99",
            "ErrMsg": "Aucune transaction." if order is not None else "Commande introuvable.",
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
        return _xml_error("Identifiants API invalides.")
    if text("ClientId") != sandbox.settings.cmi_client_id:
        return _xml_error("ClientId inconnu.")
    if not order_id:
        return _xml_error("OrderId manquant.")
    if text("Type") == "PostAuth":
        return await post_auth(sandbox, order_id, text("Total"))
    if text("Type") or text("Extra/ORDERHISTORY").upper() != "QUERY":
        return _xml_error("Seules ORDERHISTORY=QUERY et Type=PostAuth sont prises en charge.")
    order = await sandbox.store.call(lambda tx: tx.get(Order, order_id))
    return order_history(order, order_id)


async def post_auth(sandbox: Sandbox, order_id: str, total: str) -> Response:
    """Captures the order's authorisation once, in one store transaction with the check."""

    def capture(tx: Tx) -> tuple[Attempt | None, str]:
        order = tx.get(Order, order_id)
        attempt = order.approved_attempt if order is not None else None
        if order is None or attempt is None:
            return None, "Aucune autorisation à capturer pour cette commande."
        if attempt.captured:
            return None, "Transaction déjà capturée."
        amount = get_field(order.fields, "amount") or ""
        if total and not _same_amount(total, amount):
            return None, "Montant de capture invalide (capture partielle non prise en charge)."
        now = now_in_morocco(sandbox)
        attempt.api_capture = ApiCapture(trans_id=new_trans_id(tx, now), at=now)
        tx.put(order)
        return attempt, ""

    attempt, refusal = await sandbox.store.call(capture)
    if attempt is None or attempt.api_capture is None:
        return _xml_error(refusal, order_id)
    values = {
        "OrderId": order_id,
        "Response": "Approved",
        "AuthCode": attempt.auth_code,
        "HostRefNum": attempt.host_ref_num,
        "ProcReturnCode": "00",
        "TransId": attempt.api_capture.trans_id,
        "ErrMsg": "",
    }
    return _xml_response(values, {})


def _same_amount(total: str, amount: str) -> bool:
    try:
        return Decimal(total) == Decimal(amount)
    except InvalidOperation:
        return False
