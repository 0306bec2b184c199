"""Reconciliation's ledger: its runs, its findings, and the money it keeps unapplied.

The reconciliation workflow (workflows/reconciliation.py) writes here through its activities; finance
reads it (web/api/reconciliation.py, web/pages/reconciliation.py). A finding is written once, keyed
by what it is about (``dedupe_key``), so a second run over the same ledger adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portnet import metrics, unapplied
from portnet.db import get_engine
from portnet.i18n import N_
from portnet.models import ReconciliationFinding, ReconciliationRun, utcnow
from portnet.statuses import Channel

log = logging.getLogger("portnet.reconciliation")

KIND_LABELS = {
    "stuck_callback": N_("Notification partenaire bloquée"),
    "expired_attempt": N_("Tentative close vérifiée chez le partenaire"),
    "orphan_hold": N_("Factures retenues par une tentative close"),
    "overdue_attempt": N_("Tentative en cours après son échéance"),
}
OUTCOME_LABELS = {
    "delivered": N_("Transmis à la tentative en cours"),
    "unapplied": N_("Encaissement non affecté enregistré"),
    "released": N_("Factures libérées"),
    "recorded": N_("Enregistré (aucun argent à placer)"),
    "unpaid_at_partner": N_("Non payé chez le partenaire"),
    "left_to_workflow": N_("Laissé à la tentative (toujours en cours)"),
    "left_to_partner": N_("Laissé au partenaire (il renvoie sa notification)"),
    "left_for_finance": N_("À traiter par la finance"),
}
# Findings finance must act on or watch; the others are settled by the run itself.
NEEDS_FINANCE = ("unapplied", "left_to_workflow", "left_for_finance")


@dataclass(frozen=True)
class Finding:
    dedupe_key: str
    run_id: str
    kind: str
    outcome: str
    payment_id: str | None = None
    partner: str | None = None
    amount: Decimal | None = None
    detail: str = ""
    callback_id: int | None = None
    unapplied_id: int | None = None
    partner_transaction: str | None = None


def start_run(run_id: str) -> None:
    with Session(get_engine()) as db:
        if db.get(ReconciliationRun, run_id) is None:
            db.add(ReconciliationRun(id=run_id))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()


def finish_run(run_id: str, candidates: int, errors: int) -> int:
    """Closes the run with its totals; returns how many findings it made."""
    with Session(get_engine()) as db:
        run = db.get(ReconciliationRun, run_id) or ReconciliationRun(id=run_id)
        made = len(
            db.exec(select(ReconciliationFinding.id).where(ReconciliationFinding.run_id == run_id)).all()
        )
        run.candidates, run.findings, run.errors, run.finished_at = candidates, made, errors, utcnow()
        db.add(run)
        db.commit()
        return made


def has_finding(dedupe_key: str) -> bool:
    with Session(get_engine()) as db:
        found = db.exec(
            select(ReconciliationFinding.id).where(ReconciliationFinding.dedupe_key == dedupe_key)
        ).first()
        return found is not None


def record(finding: Finding) -> bool:
    """Writes the finding unless one with its key exists (a retried activity, a second run)."""
    with Session(get_engine()) as db:
        if db.exec(
            select(ReconciliationFinding.id).where(ReconciliationFinding.dedupe_key == finding.dedupe_key)
        ).first():
            return False
        db.add(ReconciliationFinding(**finding.__dict__, resolved_at=utcnow()))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            return False
    log.info(
        "reconciliation %s %s: %s (%s)", finding.kind, finding.payment_id, finding.outcome, finding.detail
    )
    metrics.reconciliation_finding(finding.partner, finding.kind, finding.outcome)
    return True


# The channel of money whose attempt we cannot name, by the partner that reported it.
CHANNEL_OF_PARTNER = {"fatourati": "cmi_fatourati", "amanpay": "amanpay_code", "cmi": "cmi_card"}


def keep_unapplied(
    *,
    partner: str,
    transaction_number: str,
    amount: Decimal,
    reason: str,
    payment_id: str | None,
    callback_id: int | None = None,
    partner_reference: str | None = None,
    channel: str | None = None,
    paid_at: datetime | None = None,
) -> int:
    """Money no invoice took, through the ledger's one writer (portnet/unapplied.py), keyed by the
    partner's transaction like the callback routes, so that one payment never makes two rows."""
    return unapplied.keep(
        unapplied.UnappliedMoney(
            channel=Channel(channel or CHANNEL_OF_PARTNER[partner]),
            transaction_number=transaction_number,
            amount=amount,
            reason=reason,
            callback_id=callback_id,
            payment_id=payment_id,
            partner_reference=partner_reference,
            paid_at=paid_at,
        )
    )


# --- what finance reads ----------------------------------------------------------------------------


def last_runs(db: Session, limit: int = 20) -> list[ReconciliationRun]:
    return list(
        db.exec(
            select(ReconciliationRun).order_by(col(ReconciliationRun.started_at).desc()).limit(limit)
        ).all()
    )


def findings(db: Session, open_only: bool = True, limit: int = 200) -> list[ReconciliationFinding]:
    query = select(ReconciliationFinding)
    if open_only:
        query = query.where(col(ReconciliationFinding.outcome).in_(NEEDS_FINANCE))
    return list(db.exec(query.order_by(col(ReconciliationFinding.found_at).desc()).limit(limit)).all())


def totals(db: Session) -> dict[str, dict[str, int]]:
    """Every finding ever made, counted by kind then outcome."""
    counts: dict[str, dict[str, int]] = {}
    for kind, outcome in db.exec(select(ReconciliationFinding.kind, ReconciliationFinding.outcome)).all():
        by_outcome = counts.setdefault(kind, {})
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    return counts


def run_json(run: ReconciliationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "candidates": run.candidates,
        "findings": run.findings,
        "errors": run.errors,
    }


def finding_json(row: ReconciliationFinding) -> dict[str, Any]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "kind": row.kind,
        "kind_label": KIND_LABELS.get(row.kind, row.kind),
        "outcome": row.outcome,
        "outcome_label": OUTCOME_LABELS.get(row.outcome, row.outcome),
        "needs_finance": row.outcome in NEEDS_FINANCE,
        "payment_id": row.payment_id,
        "partner": row.partner,
        "amount": f"{row.amount:.2f}" if row.amount is not None else None,
        "detail": row.detail,
        "callback_id": row.callback_id,
        "unapplied_id": row.unapplied_id,
        "partner_transaction": row.partner_transaction,
        "found_at": row.found_at.isoformat(),
    }
