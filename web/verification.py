"""The public receipt verification page: ``GET /verification/<code>``, reached from a receipt's QR code.

No login: a terminal agent, a customs broker's client or an auditor scans the receipt (or types its
short code on ``GET /verification``) and reads what the receipt proves, from the ledger as it is
now: the receipt number, when it was paid (Casablanca time), the amount, the emitters, the invoices
and their state, and whether the payment still stands. Nothing personal: no payer, no e-mail, no
phone, no CIN, no card, no company.

Refusals all look alike. Every look-up of a client address is counted first (portnet/request_limit.py:
``VERIFICATION_LOOKUPS_PER_WINDOW`` per ``VERIFICATION_WINDOW_SECONDS``, then 429 until the window
ends, before any look-up); then a forged, altered, malformed or unknown code gets the same 404 page,
byte for byte, through the same path (portnet/receipt_codes.py hashes even a malformed code and looks
it up). The code is never echoed back. The answer is never cached and says ``noindex``; links from it
carry no Referer (the URL is the code).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from sqlmodel import Session, select

from activities.receipts import receipt_number
from portnet import i18n, receipt_codes, request_limit
from portnet.i18n import N_
from portnet.localtime import to_local
from portnet.models import Payment
from portnet.queries import payment_invoices
from portnet.settings import Settings
from portnet.statuses import Channel, InvoiceStatus, PaymentStatus
from web.api.session import client_address
from web.deps import DB, AppSettings
from web.pages.rendering import redirect, render
from web.sessions import request_now

router = APIRouter(include_in_schema=False)
LIMIT_SCOPE = "verification-address"
TEMPLATE = "verification.html"
UNKNOWN_TITLE = N_("Reçu inconnu")


@dataclass(frozen=True)
class ProvenInvoice:
    number: str
    emitter: str
    amount: str
    status: str
    status_label: str


@dataclass(frozen=True)
class ReceiptProof:
    """What the page shows: nothing in here names or reaches a person."""

    receipt_number: str
    paid_on: str
    paid_at: str
    amount: str
    channel: str
    emitters: list[str]
    invoices: list[ProvenInvoice]
    # The payment's status now, its label, and whether the receipt still proves a payment.
    status: str
    status_label: str
    stands: bool
    # Invoices of the receipt cancelled since (the payment stands, these no longer count).
    cancelled_invoices: list[str]


def _label(enum: type[InvoiceStatus] | type[PaymentStatus], value: str) -> str:
    try:
        return str(enum(value).label)
    except ValueError:  # a status added later must not turn the page into a 500
        return value


def find_proof(db: Session, typed: str) -> ReceiptProof | None:
    """The receipt a typed or scanned code designates, read now; None for any code that is not one."""
    payment = db.exec(
        select(Payment).where(Payment.receipt_code_hash == receipt_codes.lookup_hash(typed))
    ).first()
    if payment is None or payment.paid_at is None:
        return None
    rows = payment_invoices(db, payment.id)
    invoices = [
        ProvenInvoice(
            number=inv.number,
            emitter=em.name,
            amount=i18n.format_amount(link.amount_ttc, inv.currency),
            status=inv.status,
            status_label=_label(InvoiceStatus, inv.status),
        )
        for inv, em, link in rows
    ]
    paid_at = to_local(payment.paid_at)
    currency = rows[0][0].currency if rows else "MAD"
    return ReceiptProof(
        receipt_number=receipt_number(payment.id),
        paid_on=i18n.format_day(paid_at),
        paid_at=paid_at.strftime("%H:%M:%S"),
        amount=i18n.format_amount(Decimal(payment.amount), currency),
        channel=_label_channel(payment.channel),
        emitters=sorted({em.name for _, em, _ in rows}),
        invoices=invoices,
        status=payment.status,
        status_label=_label(PaymentStatus, payment.status),
        stands=payment.status == PaymentStatus.SUCCEEDED.value,
        cancelled_invoices=[i.number for i in invoices if i.status == InvoiceStatus.CANCELLED.value],
    )


def _label_channel(value: str) -> str:
    try:
        return Channel(value).label
    except ValueError:
        return value


def _page(request: Request, settings: Settings, ctx: dict[str, object], status_code: int = 200) -> Response:
    # A public page: whoever is logged in or not, it shows the same thing, with no menu and no session.
    request.state.user = None
    context: dict[str, object] = {
        "proof": None,
        "asked": False,
        "throttled": False,
        "verification_path": receipt_codes.VERIFICATION_PATH,
    }
    context.update(ctx)
    response = render(request, TEMPLATE, context, status_code=status_code, settings=settings)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get(receipt_codes.VERIFICATION_PATH)
def verification_form(request: Request, settings: AppSettings) -> Response:
    """The form where a code is typed by hand; a typed code is sent on to its page."""
    typed = (request.query_params.get("code") or "").strip()
    if typed:
        compact = receipt_codes.normalize(typed)
        shown = receipt_codes.format_code(compact) if compact else typed[: receipt_codes.MAX_TYPED]
        return redirect(f"{receipt_codes.VERIFICATION_PATH}/{quote(shown, safe='-')}", settings=settings)
    return _page(request, settings, {})


@router.get(receipt_codes.VERIFICATION_PATH + "/{code:path}")
def verification(code: str, request: Request, db: DB, settings: AppSettings) -> Response:
    now = request_now(request)
    verdict = request_limit.count_request(
        db,
        LIMIT_SCOPE,
        client_address(request),
        settings.verification_lookups_per_window,
        timedelta(seconds=settings.verification_window_seconds),
        now,
    )
    if not verdict.allowed:
        response = _page(request, settings, {"throttled": True}, status_code=429)
        response.headers["Retry-After"] = str(verdict.retry_after_seconds(now))
        return response
    proof = find_proof(db, code)
    if proof is None:
        return _page(request, settings, {"asked": True}, status_code=404)
    return _page(request, settings, {"proof": proof, "asked": True})
