"""The chaos run's verdict: the bank's view, the API's and the ledger's, payment by payment.

- the bank: what the partner's own store says it took (a CMI approval it captured, a Fatourati
  reference paid, an Amanpay order paid), read from the sandboxes' SQLite file, as a statement;
- the API: ``GET /api/v1/payments/{id}`` (``succeeded``, or still on its way);
- the ledger: the invoice's status, its hold, and any unapplied money recorded for the payment.

Figures (``payments, captured, succeeded, lost, uncaptured_settled, double, stuck``):
``lost`` the attempt is over, the bank took the money, the invoice is not paid and no unapplied
money records it (an attempt not over yet whose money the bank took is ``stuck``: not lost yet);
``uncaptured_settled`` the invoice is paid (or the API says succeeded) and the bank took nothing;
``double`` the bank took the money more than once for one invoice, or the ledger counts it more
often than the bank took it (the invoice paid and the same money kept as unapplied, which finance
could refund); ``stuck`` the API has no final
status after the settling time, or the attempt is over and still holds its invoice, or the API and
the ledger disagree. ``unstarted`` counts invoices whose payer never got an attempt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.payers import PaymentRun

FINAL = {"succeeded", "failed", "expired", "cancelled"}
PAID_INVOICE = {"paid", "payment_confirmed"}
FIGURES = ("payments", "captured", "succeeded", "lost", "uncaptured_settled", "double", "stuck")


@dataclass
class BankView:
    took: int  # how many times the bank took the money for this payment (0, 1, 2 ...)
    detail: str


@dataclass
class Verdict:
    figures: dict[str, int]
    unstarted: int
    unapplied: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        bad = ("lost", "uncaptured_settled", "double", "stuck")
        return not any(self.figures[name] for name in bad) and self.unstarted == 0

    def line(self) -> str:
        return ", ".join(f"{name} {self.figures[name]}" for name in FIGURES)


def bank_views(sandbox_database_url: str, runs: list[PaymentRun]) -> dict[str, BankView]:
    """What each partner's books say, by payment id (the CMI oid, Fatourati and Amanpay order ids)."""
    from sandbox.amanpay import Order as AmanpayOrder
    from sandbox.cmi_card.orders import Order as CmiOrder
    from sandbox.fatourati import Token
    from sandbox.store import Store, Tx

    def read(tx: Tx) -> dict[str, BankView]:
        views: dict[str, BankView] = {}
        for run in runs:
            if run.payment_id is None:
                continue
            pid = run.payment_id
            if run.channel == "card":
                order = tx.get(CmiOrder, pid)
                approved = [a for a in (order.attempts if order else []) if a.approved]
                captured = [a for a in approved if a.captured]
                detail = f"cmi: {len(approved)} approved, {len(captured)} captured"
                views[pid] = BankView(len(captured), detail)
            elif run.channel == "fatourati":
                tokens = tx.find(Token, pid)
                paid = [p for t in tokens for p in t.payments if p.decision_code == "0"]
                views[pid] = BankView(len(paid), f"fatourati: {len(paid)} paid transactions")
            else:
                found = tx.get(AmanpayOrder, pid)
                paid_order = found is not None and found.status == "paid"
                views[pid] = BankView(int(paid_order), f"amanpay: {found.status if found else 'no order'}")
        return views

    store = Store(sandbox_database_url)
    try:
        return store.run(read)
    finally:
        store.close()


def ledger_views(runs: list[PaymentRun]) -> dict[int, dict[str, Any]]:
    """Invoice status, its hold and the unapplied money of its payment, by invoice id."""
    from sqlmodel import Session, col, select

    from portnet.db import get_engine
    from portnet.models import Invoice, InvoiceHold, UnappliedPayment

    ids = [r.invoice_id for r in runs]
    payment_ids = [r.payment_id for r in runs if r.payment_id]
    with Session(get_engine()) as session:
        invoice_rows = session.exec(select(Invoice).where(col(Invoice.id).in_(ids))).all()
        invoices = {i.id: i.status for i in invoice_rows}
        hold_rows = session.exec(select(InvoiceHold).where(col(InvoiceHold.invoice_id).in_(ids))).all()
        holds = {h.invoice_id: h.payment_id for h in hold_rows}
        unapplied = session.exec(
            select(UnappliedPayment).where(col(UnappliedPayment.payment_id).in_(payment_ids))
        ).all()
    by_payment: dict[str, list[str]] = {}
    for row in unapplied:
        if row.payment_id:
            by_payment.setdefault(row.payment_id, []).append(f"{row.transaction_number}: {row.reason}")
    return {
        r.invoice_id: {
            "status": invoices.get(r.invoice_id),
            "held_by": holds.get(r.invoice_id),
            "unapplied": len(by_payment.get(r.payment_id or "", [])),
            "unapplied_why": by_payment.get(r.payment_id or "", []),
        }
        for r in runs
    }


async def api_statuses(
    api: httpx.AsyncClient, runs: list[PaymentRun], settle_seconds: float
) -> dict[str, str]:
    """Each started payment's API status, polled until all are final or ``settle_seconds`` pass."""
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + settle_seconds
    pending = [r.payment_id for r in runs if r.payment_id]
    while True:
        for pid in list(pending):
            try:
                reply = await api.get(f"/api/v1/payments/{pid}")
                statuses[pid] = (
                    str(reply.json().get("status"))
                    if reply.status_code == 200
                    else f"http {reply.status_code}"
                )
            except httpx.HTTPError as exc:
                statuses[pid] = type(exc).__name__
            if statuses[pid] in FINAL:
                pending.remove(pid)
        if not pending or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(2.0)


def judge(
    runs: list[PaymentRun],
    bank: dict[str, BankView],
    api: dict[str, str],
    ledger: dict[int, dict[str, Any]],
) -> Verdict:
    figures = dict.fromkeys(FIGURES, 0)
    figures["payments"] = len(runs)
    problems: list[str] = []
    unstarted = unapplied_total = 0
    for run in runs:
        book = ledger[run.invoice_id]
        if run.payment_id is None:
            unstarted += 1
            problems.append(f"invoice {run.invoice_id} ({run.channel}): no attempt; {'; '.join(run.notes)}")
            continue
        pid = run.payment_id
        view = bank.get(pid, BankView(0, "unknown to the bank"))
        status = api.get(pid, "unknown")
        invoice_paid = book["status"] in PAID_INVOICE
        unapplied_total += book["unapplied"]
        figures["captured"] += view.took > 0
        figures["succeeded"] += status == "succeeded"
        payer = "; ".join([f"payer: {run.bank_answer or 'nothing paid'}", *run.notes])
        where = (
            f"{pid} ({run.channel}, invoice {run.invoice_id} {book['status']}, API {status}, {view.detail}; "
            f"{payer})"
        )
        over = status in FINAL
        if over and view.took > 0 and not invoice_paid and not book["unapplied"]:
            figures["lost"] += 1
            problems.append(f"lost: {where}")
        if view.took == 0 and (invoice_paid or status == "succeeded"):
            figures["uncaptured_settled"] += 1
            problems.append(f"uncaptured settled: {where}")
        # The ledger's count of the money: the settled invoice, and each unapplied row.
        counted = int(invoice_paid) + book["unapplied"]
        if view.took > 1:
            figures["double"] += 1
            problems.append(f"double: {where}")
        elif counted > max(view.took, 1):
            figures["double"] += 1
            problems.append(f"double in the ledger: {where}; unapplied {book.get('unapplied_why', [])}")
        held = book["held_by"] == pid
        disagree = (status == "succeeded") != invoice_paid and over
        if not over or held and over or disagree:
            figures["stuck"] += 1
            why = (
                "not final"
                if not over
                else ("still holds its invoice" if held else "API and ledger disagree")
            )
            problems.append(f"stuck ({why}): {where}")
    return Verdict(figures, unstarted, unapplied_total, problems)
