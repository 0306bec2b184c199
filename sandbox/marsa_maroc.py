"""Imitation of MARSA MAROC's invoicing API, which MARSA MAROC does not publish: we designed it.

``GET /marsa-maroc/api/v1/invoices`` with a bearer token lists a customer's open invoices at a
terminal (``terminal`` + ``customer_id``) or finds one by number (``terminal`` + ``invoice_number``),
page by page (``page``, ``page_size``). Unknown customer, terminal or number: 404. Bad token: 401.

Tests tell it to misbehave through ``POST /marsa-maroc/admin/faults``: slow answers, 5xx, malformed
JSON, duplicate rows across pages, 401 (kept in the sandbox's store; the invoices are fixed data).
Settlement notices for MARSA MAROC invoices go through the emitter sandbox
(``/emitters/{code}/settlements``), like every emitter's.
"""

from __future__ import annotations

import asyncio
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from portnet.settings import Settings
from sandbox.context import sandbox_of
from sandbox.store import Record, Tx

router = APIRouter(prefix="/marsa-maroc")

TERMINALS = {
    "CASA": "Casablanca",
    "MOHA": "Mohammedia",
    "JORF": "Jorf Lasfar",
    "SAFI": "Safi",
    "AGAD": "Agadir",
    "TMED": "Tanger Med",
    "NADO": "Nador",
    "ALHO": "Al Hoceima",
    "LAAY": "Laâyoune",
    "DAKH": "Dakhla",
}
MAX_PAGE_SIZE = 100
CENT = Decimal("0.01")

# The guide's first eight invoices of TMTA (customer 000236 at Casablanca): number, date, HT, TTC.
GUIDE_TMTA = (
    ("02296945", datetime(1997, 2, 3), "2202.00", "2642.40"),
    ("02296947", datetime(1997, 2, 3), "2202.00", "2642.40"),
    ("02329290", datetime(1997, 3, 12), "10765.00", "12918.00"),
    ("02329291", datetime(1997, 3, 12), "46.35", "55.62"),
    ("02345680", datetime(1997, 3, 31), "291.90", "350.28"),
    ("02627517", datetime(1998, 3, 12), "216.60", "259.92"),
    ("03080456", datetime(1999, 8, 2), "862.53", "1035.04"),
    ("03080965", datetime(1999, 8, 3), "1282.22", "1538.66"),
)


@dataclass
class MarsaInvoice:
    number: str
    terminal: str
    customer_id: str
    customer_name: str
    issued_at: datetime
    due_at: datetime
    amount_ht: Decimal
    amount_ttc: Decimal
    type: str = "principale"
    status: str = "unpaid"

    def as_json(self) -> dict[str, Any]:
        return {
            "invoice_number": self.number,
            "type": self.type,
            "terminal": self.terminal,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "issued_at": self.issued_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "amount_ht": f"{self.amount_ht:.2f}",
            "amount_tva": f"{self.amount_ttc - self.amount_ht:.2f}",
            "amount_ttc": f"{self.amount_ttc:.2f}",
            "currency": "MAD",
            "status": self.status,
            "lines": self.lines(),
        }

    def lines(self) -> list[dict[str, str]]:
        """What was billed: container handling on arrival, and storage for the larger invoices."""
        lines = [
            {
                "prestation": "Manutention conteneur",
                "operation_type": "Débarquement",
                "reference": f"BL{self.number}",
            }
        ]
        if self.amount_ht >= 1000:
            lines.append(
                {"prestation": "Magasinage", "operation_type": "Import", "reference": f"BL{self.number}"}
            )
        return lines


def _seed() -> dict[str, MarsaInvoice]:
    invoices: dict[str, MarsaInvoice] = {}

    def add(number: str, terminal: str, cid: str, name: str, day: datetime, ht: str, ttc: str) -> None:
        invoices[number] = MarsaInvoice(
            number, terminal, cid, name, day, day + timedelta(days=30), Decimal(ht), Decimal(ttc)
        )

    for number, day, ht, ttc in GUIDE_TMTA:
        add(number, "CASA", "000236", "TMTA TMTA", day, ht, ttc)
    # Fifteen more for TMTA (23 in all, as in the guide), deterministic.
    rand = random.Random(236)  # noqa: S311 - sandbox data, not a secret
    day = datetime(1999, 9, 1)
    serial = 3081200
    for _ in range(15):
        day += timedelta(days=rand.randint(20, 120))
        serial += rand.randint(50, 4000)
        amount = (Decimal(rand.randint(4000, 2_500_000)) / 100).quantize(CENT)
        with_vat = (amount * Decimal("1.2")).quantize(CENT, rounding=ROUND_HALF_UP)
        add(f"{serial:08d}", "CASA", "000236", "TMTA TMTA", day, str(amount), str(with_vat))
    # Other customers and terminals, so that a request sees only its own.
    add("04100012", "MOHA", "000118", "SATAA IMPORT EXPORT", datetime(2026, 10, 2), "1500.00", "1800.00")
    add("04100013", "MOHA", "000118", "SATAA IMPORT EXPORT", datetime(2026, 10, 9), "320.50", "384.60")
    add("05200007", "TMED", "000419", "ASKA IMPRT EXPORT", datetime(2026, 9, 15), "780.00", "936.00")
    # TMTA at Jorf Lasfar too: that terminal's invoices are filed under their own emitter.
    add("06300021", "JORF", "000236", "TMTA TMTA", datetime(2026, 10, 20), "4200.00", "5040.00")
    return invoices


class Faults(Record):
    """What the next calls do wrong (``times`` counts down; 0 means until reset), and how many
    listing calls were made: kept, so a fault set by a test survives a restart of the sandboxes."""

    kind = "marsa_maroc_faults"

    fault: str | None = None  # slow | error | malformed | duplicate | unauthorized
    times: int = 0
    delay_seconds: float = 0.0
    status_code: int = 503
    calls: int = 0

    def key(self) -> str:
        return "faults"


INVOICES = _seed()


def token_ok(settings: Settings, header: str | None) -> bool:
    scheme, _, token = (header or "").partition(" ")
    expected = settings.marsa_maroc_api_token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def faults_of(tx: Tx) -> Faults:
    return tx.get(Faults, "faults") or Faults()


def take_fault(tx: Tx) -> Faults | None:
    """Counts the call, and returns the fault it must show (if any), one fewer to come."""
    faults = faults_of(tx)
    faults.calls += 1
    current = faults.model_copy() if faults.fault is not None else None
    if faults.fault is not None and faults.times > 0:
        faults.times -= 1
        if faults.times == 0:
            faults = Faults(calls=faults.calls)
    tx.put(faults)
    return current


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status)


@router.get("/", response_class=HTMLResponse, name="marsa_index")
async def index(request: Request) -> HTMLResponse:
    sandbox = sandbox_of(request)
    customers: dict[tuple[str, str], list[MarsaInvoice]] = {}
    for inv in INVOICES.values():
        customers.setdefault((inv.terminal, inv.customer_id), []).append(inv)
    faults = await sandbox.store.call(faults_of)
    context = {"customers": customers, "terminals": TERMINALS, "faults": faults}
    return sandbox.page(request, "marsa_maroc/index.html", context)


@router.get("/api/v1/terminals")
async def terminals(request: Request) -> Response:
    if not token_ok(sandbox_of(request).settings, request.headers.get("Authorization")):
        return _error(401, "unauthorized", "Jeton d'accès invalide.")
    return JSONResponse({"terminals": [{"code": c, "name": n} for c, n in TERMINALS.items()]})


@router.get("/api/v1/invoices")
async def list_invoices(request: Request) -> Response:
    sandbox = sandbox_of(request)
    fault = await sandbox.store.call(take_fault)
    if fault and fault.fault == "slow":
        await asyncio.sleep(fault.delay_seconds)
    if fault and fault.fault == "unauthorized":
        return _error(401, "unauthorized", "Jeton d'accès invalide.")
    if not token_ok(sandbox.settings, request.headers.get("Authorization")):
        return _error(401, "unauthorized", "Jeton d'accès invalide.")
    if fault and fault.fault == "error":
        return _error(fault.status_code, "unavailable", "Service momentanément indisponible.")
    if fault and fault.fault == "malformed":
        return Response('{"page": 1, "items": [{"invoice_number": "0229', media_type="application/json")

    params = request.query_params
    terminal = (params.get("terminal") or "").strip().upper()
    customer_id = (params.get("customer_id") or "").strip()
    number = (params.get("invoice_number") or "").strip()
    try:
        page = max(1, int(params.get("page") or 1))
        page_size = max(1, min(MAX_PAGE_SIZE, int(params.get("page_size") or 20)))
    except ValueError:
        return _error(400, "bad_request", "Pagination invalide.")
    if terminal not in TERMINALS:
        return _error(404, "unknown_terminal", "Terminal inconnu.")
    if bool(customer_id) == bool(number):
        return _error(400, "bad_request", "Donnez l'identifiant client ou le numéro de facture.")
    if number:
        rows = [i for i in INVOICES.values() if i.number == number and i.terminal == terminal]
        if not rows:
            return _error(404, "unknown_invoice", "Facture inconnue sur ce terminal.")
    else:
        rows = [i for i in INVOICES.values() if i.customer_id == customer_id and i.terminal == terminal]
        if not rows:
            return _error(404, "unknown_customer", "Client inconnu sur ce terminal.")
    rows = sorted((i for i in rows if i.status == "unpaid"), key=lambda i: (i.issued_at, i.number))
    total = len(rows)
    pages = max(1, -(-total // page_size))
    start = (page - 1) * page_size
    items = rows[start : start + page_size]
    if fault and fault.fault == "duplicate" and page > 1 and start - 1 < total:
        # A page that repeats the previous page's last row (a listing that shifted between calls).
        items = [rows[start - 1], *items]
    return JSONResponse(
        {
            "terminal": terminal,
            "page": page,
            "page_size": page_size,
            "total": total,
            "pages": pages,
            "items": [i.as_json() for i in items],
        }
    )


@router.post("/admin/faults")
async def set_faults(request: Request) -> Response:
    """Sandbox only: ``{"kind": "slow"|"error"|"malformed"|"duplicate"|"unauthorized", "times": n}``."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error(400, "bad_request", "Corps JSON attendu.")
    kind = body.get("kind")
    if kind not in (None, "slow", "error", "malformed", "duplicate", "unauthorized"):
        return _error(400, "bad_request", "Panne inconnue.")
    try:
        times = int(body.get("times") or 0)
        delay = float(body.get("delay_seconds") or 0)
        status_code = int(body.get("status_code") or 503)
    except (TypeError, ValueError):
        return _error(400, "bad_request", "Paramètres de panne invalides.")

    def set_(tx: Tx) -> Faults:
        faults = Faults(
            fault=kind, times=times, delay_seconds=delay, status_code=status_code, calls=faults_of(tx).calls
        )
        tx.put(faults)
        return faults

    faults = await sandbox_of(request).store.call(set_)
    return JSONResponse({"kind": kind, "times": faults.times, "calls": faults.calls})


@router.delete("/admin/faults")
async def reset_faults(request: Request) -> Response:
    def reset(tx: Tx) -> Faults:
        faults = Faults(calls=faults_of(tx).calls)
        tx.put(faults)
        return faults

    faults = await sandbox_of(request).store.call(reset)
    return JSONResponse({"kind": None, "calls": faults.calls})


@router.get("/admin/state")
async def admin_state(request: Request) -> Response:
    faults = await sandbox_of(request).store.call(faults_of)
    return JSONResponse({"calls": faults.calls, "fault": faults.fault, "remaining": faults.times})
