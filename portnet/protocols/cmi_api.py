"""CMI's XML API (``/fim/api``, the EST / Nestpay one), as ../shared/partners.md describes it.

Two calls the card channel makes after it answered ``ACTION=POSTAUTH`` to CMI's callback, because
that answer may never have reached CMI (our worker slow past CMI's 10 s callback timeout):

- the order status query: a ``CC5Request`` with ``Name``, ``Password``, ``ClientId``, ``OrderId`` and
  ``<Extra><ORDERHISTORY>QUERY</ORDERHISTORY></Extra>``; the ``CC5Response`` lists the order's
  transactions, each authorised only (``A``), captured (``C``), declined (``D``) or voided (``V``);
- the capture of an authorisation: the same request with ``<Type>PostAuth</Type>``; the answer has
  ``Response`` (Approved / Declined / Error), ``ProcReturnCode`` (``00`` = done), ``TransId``, ``ErrMsg``.

The API authenticates us by its own user name and password (not the store key); its answers carry
no signature, so they are held, like every partner message, to a closed list of elements, each with
its rule (our order id echoed, known values, bounded safe text), before anything in them is used.
Pure functions, no I/O: activities/cmi_card.py makes the calls, the unit tests pin the rules.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - DTDs and entities are refused before parsing
from dataclasses import dataclass
from decimal import Decimal

from portnet.protocols.fields import PAYMENT_ID, MessageRejected, is_safe_text, parse_amount

AUTHORISED, CAPTURED, DECLINED, VOIDED = "A", "C", "D", "V"
TRANSACTION_STATES = (AUTHORISED, CAPTURED, DECLINED, VOIDED)
RESPONSES = ("Approved", "Declined", "Error")
APPROVED_CODE = "00"
MAX_ANSWER_BYTES = 64 * 1024
MAX_TRANSACTIONS = 50

# The answer's elements and, inside ``Extra``, the order history's: nothing else is read.
ANSWER_ELEMENTS = frozenset(
    {
        "OrderId",
        "GroupId",
        "Response",
        "AuthCode",
        "HostRefNum",
        "ProcReturnCode",
        "TransId",
        "ErrMsg",
        "Extra",
    }
)
_TRX_LINE = re.compile(r"TRX[1-9][0-9]{0,2}")
EXTRA_ELEMENTS = frozenset(
    {"TRXCOUNT", "TRANS_STAT", "TRX_DATE", "ORIG_TRANS_AMT", "CAPTURE_AMT", "ERRORCODE", "SETTLEID"}
)
_TRANS_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AUTH_CODE = re.compile(r"[A-Za-z0-9]{0,12}")
_HOST_REF = re.compile(r"[A-Za-z0-9]{0,32}")
_CODE = re.compile(r"[0-9]{2}")
_TRX_DATE = re.compile(r"(?:[0-9]{8} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?)?")
_COUNT = re.compile(r"[0-9]{1,3}")
_AMOUNT_OR_ZERO = re.compile(r"[0-9]{1,13}\.[0-9]{2}")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_-]{0,32}")


def _request(name: str, password: str, client_id: str, oid: str, body: dict[str, str]) -> bytes:
    for field, value in (("Name", name), ("Password", password), ("ClientId", client_id)):
        if not value or not is_safe_text(value, 128):
            raise ValueError(f"CMI API {field} missing or unsafe")
    if not PAYMENT_ID.fullmatch(oid):
        raise ValueError("not one of our order ids")
    root = ET.Element("CC5Request")
    for tag, text in (("Name", name), ("Password", password), ("ClientId", client_id), ("OrderId", oid)):
        ET.SubElement(root, tag).text = text
    for tag, text in body.items():
        if tag == "Extra":
            extra = ET.SubElement(root, "Extra")
            ET.SubElement(extra, "ORDERHISTORY").text = text
        else:
            ET.SubElement(root, tag).text = text
    document = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return document.encode("utf-8")


def order_history_request(name: str, password: str, client_id: str, oid: str) -> bytes:
    return _request(name, password, client_id, oid, {"Extra": "QUERY"})


def post_auth_request(name: str, password: str, client_id: str, oid: str) -> bytes:
    """The capture of the whole authorised amount (no ``Total``: no partial capture)."""
    return _request(name, password, client_id, oid, {"Type": "PostAuth"})


@dataclass(frozen=True)
class CmiTransaction:
    trans_id: str
    response: str
    proc_return_code: str
    amount: Decimal | None
    trx_date: str
    auth_code: str
    state: str  # A | C | D | V


@dataclass(frozen=True)
class ApiAnswer:
    """A ``CC5Response`` whose every element passed its rule."""

    oid: str
    response: str
    proc_return_code: str
    trans_id: str
    err_msg: str
    # Present only in an order history (``TRXCOUNT``): None for any other answer.
    transactions: tuple[CmiTransaction, ...] | None

    @property
    def approved(self) -> bool:
        return self.response == "Approved" and self.proc_return_code == APPROVED_CODE

    def state_of(self, trans_id: str) -> str | None:
        """What CMI holds for one transaction: A, C, D, V, or None if it does not list it."""
        for transaction in self.transactions or ():
            if transaction.trans_id == trans_id:
                return transaction.state
        return None


def _parse(body: bytes) -> ET.Element:
    if len(body) > MAX_ANSWER_BYTES:
        raise MessageRejected("body", "too large")
    if b"<!" in body:  # no DTD, no entity: the standard library parser would expand them
        raise MessageRejected("body", "DTD or entity")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError:
        raise MessageRejected("body", "not an XML document") from None
    if root.tag != "CC5Response":
        raise MessageRejected("body", "not a CC5Response")
    return root


def _children(node: ET.Element, allowed: frozenset[str], lines: bool = False) -> dict[str, str]:
    """Each child once, known, without children of its own (but ``Extra``), its text safe."""
    found: dict[str, str] = {}
    for child in node:
        name = child.tag
        if name not in allowed and not (lines and _TRX_LINE.fullmatch(name)):
            raise MessageRejected(ascii(name[:40]), "unknown element")
        if name in found:
            raise MessageRejected(name, "repeated")
        if name != "Extra" and len(child):
            raise MessageRejected(name, "nested element")
        if child.attrib:
            raise MessageRejected(name, "attributes")
        text = (child.text or "").strip() if name != "Extra" else ""
        # Transaction lines hold tabs between their columns; every other value is plain safe text.
        if not is_safe_text(text.replace("\t", " ") if lines and name.startswith("TRX") else text, 512):
            raise MessageRejected(name, "too long or unsafe character")
        found[name] = text
    return found


def _check(name: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        raise MessageRejected(name, "bad format")
    return value


def _transaction(name: str, line: str) -> CmiTransaction:
    """``TransId, Response, ProcReturnCode, amount, date, AuthCode, state``, tab-separated."""
    columns = line.split("\t")
    if len(columns) != 7:
        raise MessageRejected(name, "not seven columns")
    trans_id, response, code, amount_text, trx_date, auth_code, state = (c.strip() for c in columns)
    _check(name, trans_id, _TRANS_ID)
    if response not in RESPONSES or state not in TRANSACTION_STATES:
        raise MessageRejected(name, "unknown value")
    _check(name, code, _CODE)
    _check(name, trx_date, _TRX_DATE)
    _check(name, auth_code, _AUTH_CODE)
    amount = parse_amount(amount_text) if amount_text else None
    if amount_text and amount is None:
        raise MessageRejected(name, "not a positive amount with two decimals")
    return CmiTransaction(trans_id, response, code, amount, trx_date, auth_code, state)


def read_answer(body: bytes, oid: str) -> ApiAnswer:
    """Any ``CC5Response`` to a call about ``oid``; raises ``MessageRejected`` on the first fault."""
    root = _parse(body)
    values = _children(root, ANSWER_ELEMENTS)
    extra_node = root.find("Extra")
    extra = _children(extra_node, EXTRA_ELEMENTS, lines=True) if extra_node is not None else {}
    response = values.get("Response", "")
    if response not in RESPONSES:
        raise MessageRejected("Response", "unknown value")
    code = _check("ProcReturnCode", values.get("ProcReturnCode", ""), _CODE)
    answered_oid = values.get("OrderId", "")
    # An error about the request itself may leave the order id empty; anything else must be ours.
    if answered_oid != oid and not (response == "Error" and answered_oid == ""):
        raise MessageRejected("OrderId", "not ours")
    trans_id = values.get("TransId", "")
    if trans_id:
        _check("TransId", trans_id, _TRANS_ID)
    _check("AuthCode", values.get("AuthCode", ""), _AUTH_CODE)
    _check("HostRefNum", values.get("HostRefNum", ""), _HOST_REF)
    for name in ("ORIG_TRANS_AMT", "CAPTURE_AMT"):
        if extra.get(name):
            _check(name, extra[name], _AMOUNT_OR_ZERO)
    if extra.get("TRANS_STAT") and extra["TRANS_STAT"] not in TRANSACTION_STATES:
        raise MessageRejected("TRANS_STAT", "unknown value")
    _check("TRX_DATE", extra.get("TRX_DATE", ""), _TRX_DATE)
    _check("ERRORCODE", extra.get("ERRORCODE", ""), _ERROR_CODE)
    transactions: tuple[CmiTransaction, ...] | None = None
    if "TRXCOUNT" in extra:
        count = int(_check("TRXCOUNT", extra["TRXCOUNT"], _COUNT))
        lines = sorted((n for n in extra if _TRX_LINE.fullmatch(n)), key=lambda n: int(n[3:]))
        if count > MAX_TRANSACTIONS or lines != [f"TRX{i}" for i in range(1, count + 1)]:
            raise MessageRejected("TRXCOUNT", "does not match the transaction lines")
        transactions = tuple(_transaction(n, extra[n]) for n in lines)
    elif any(_TRX_LINE.fullmatch(n) for n in extra):
        raise MessageRejected("TRXCOUNT", "missing")
    return ApiAnswer(
        oid=answered_oid,
        response=response,
        proc_return_code=code,
        trans_id=trans_id,
        err_msg=values.get("ErrMsg", ""),
        transactions=transactions,
    )
