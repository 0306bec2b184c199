"""Cheque and bank transfer: the payer's declaration, finance's decision, the subscription renewal.

Like the ledger activities, each is one transaction and idempotent (message-log dedupe keys).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import col, select
from temporalio import activity

from portnet.db import session_scope
from portnet.messagelog import append_message
from portnet.models import Company, Invoice, Payment, PaymentChannelData, PaymentInvoice, utcnow
from portnet.statuses import Channel, PaymentStatus


@dataclass
class DecisionLogInput:
    payment_id: str
    user_name: str
    confirm: bool
    reason: str
    at: str


@dataclass
class RenewalInput:
    payment_id: str
    confirmed_on: str  # ISO date of the confirmation, from workflow time


DECLARATION_LABELS = {
    "cheque_number": "chèque n°",
    "bank": "banque",
    "transfer_reference": "virement réf.",
    "transfer_date": "date",
}


def describe(declaration: dict[str, str]) -> str:
    return ", ".join(f"{DECLARATION_LABELS.get(k, k)} {v}" for k, v in declaration.items() if v)


def _invoices(session, payment_id: str) -> list[Invoice]:  # type: ignore[no-untyped-def]
    return list(
        session.exec(
            select(Invoice)
            .join(PaymentInvoice, col(PaymentInvoice.invoice_id) == Invoice.id)
            .where(PaymentInvoice.payment_id == payment_id)
            .order_by(col(Invoice.number))
        ).all()
    )


@activity.defn
def record_declaration(payment_id: str, user_name: str, declaration: dict[str, str]) -> None:
    with session_scope() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        data = session.get(PaymentChannelData, payment_id) or PaymentChannelData(payment_id=payment_id)
        data.declaration = json.dumps(declaration, ensure_ascii=False, sort_keys=True)
        session.add(data)
        if payment.status == PaymentStatus.STARTED.value:
            # Finance's "awaiting confirmation" list reads the ledger.
            payment.status = PaymentStatus.AWAITING_CONFIRMATION.value
            payment.updated_at = utcnow()
            session.add(payment)
        label = Channel(payment.channel).label
        for inv in _invoices(session, payment_id):
            assert inv.id is not None
            append_message(
                session,
                inv.id,
                function="FIN",
                name="FIN_PAY_DECLARED",
                state=inv.status,
                observations=f"{label} déclaré par le payeur ({describe(declaration)}), en attente de "
                "confirmation d'encaissement par la finance",
                user_name=user_name,
                receiver="PortNet",
                needs_reply=True,
                payment_id=payment_id,
                dedupe_key=f"{payment_id}:declared:{inv.id}",
            )


@activity.defn
def log_finance_decision(inp: DecisionLogInput) -> None:
    """Finance's confirm/reject: a line in each invoice's message log with the finance user's name."""
    at = datetime.fromisoformat(inp.at).replace(tzinfo=None)
    with session_scope() as session:
        data = session.get(PaymentChannelData, inp.payment_id) or PaymentChannelData(
            payment_id=inp.payment_id
        )
        if data.decided_by is None:
            data.decided_by, data.decision_reason, data.decided_at = inp.user_name, inp.reason, at
            session.add(data)
        verb = "Encaissement confirmé" if inp.confirm else "Règlement rejeté"
        for inv in _invoices(session, inp.payment_id):
            assert inv.id is not None
            append_message(
                session,
                inv.id,
                function="FIN",
                name="FIN_CONFIRMED" if inp.confirm else "FIN_REJECTED",
                state=inv.status,
                observations=f"{verb} par {inp.user_name}" + (f" : {inp.reason}" if inp.reason else ""),
                user_name=inp.user_name,
                receiver="PortNet",
                payment_id=inp.payment_id,
                dedupe_key=f"{inp.payment_id}:decision:{inv.id}",
                at=at,
            )


def renewed_end(current: date | None, confirmed_on: date) -> date:
    """One year from the later of today and the current end: early payers lose no day."""
    start = max(confirmed_on, current) if current is not None else confirmed_on
    try:
        return start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        return start.replace(year=start.year + 1, day=28)


@activity.defn
def renew_subscriptions(inp: RenewalInput) -> str | None:
    """After finance confirmed the money: a subscription invoice extends its company's subscription.

    Once per invoice (the message's dedupe key is checked in the same transaction). Returns the new end.
    """
    confirmed_on = date.fromisoformat(inp.confirmed_on[:10])
    new_end: date | None = None
    with session_scope() as session:
        for inv in _invoices(session, inp.payment_id):
            assert inv.id is not None
            if not inv.is_subscription:
                continue
            company = session.get(Company, inv.company_id)
            assert company is not None
            candidate = renewed_end(company.subscription_end, confirmed_on)
            logged = append_message(
                session,
                inv.id,
                function="FIN",
                name="FIN_SUBSCRIPTION_RENEWED",
                state=inv.status,
                observations=f"Abonnement PORTNET prolongé jusqu'au {candidate:%d/%m/%Y}",
                receiver=company.name,
                payment_id=inp.payment_id,
                dedupe_key=f"{inp.payment_id}:renew:{inv.id}",
            )
            if logged:
                company.subscription_end = candidate
                session.add(company)
                new_end = candidate
    return new_end.isoformat() if new_end else None


ACTIVITIES: list[Callable[..., Any]] = [record_declaration, log_finance_decision, renew_subscriptions]
