"""What the Temporal Web UI shows finance of each workflow, in French: summaries and details.

Three kinds of text, all built here so the wording lives in one place:

- the **static summary and details** a workflow is started with (the web layer passes them to
  ``start_workflow`` / update-with-start): the channel, the amount (``3 600,00 MAD``), the company and
  its customs code, the invoice numbers; for a MARSA MAROC request the terminal and customer id;
- the **current details** the workflow keeps up to date at each phase (``workflow.set_current_details``):
  "En attente du payeur — expire à 14:05", "Référence Fatourati …", "Réglée", "Libérée"...;
- the **activity summaries** ("Réservation des factures 00069321", "Capture CMI").

No personal data: payer names, e-mail addresses, phone numbers and CIN never appear here (company,
customs code, invoice numbers, amounts and partner references only). The payload codec encrypts
these texts like any payload; finance reads them through the codec server. Pure functions of their
arguments: deterministic, safe inside a workflow (time is passed in, never read).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from portnet.localtime import to_local
from portnet.money import format_fr
from portnet.statuses import Channel, PaymentStatus
from workflows.types import PaymentView

DASH = " — "
# How many invoice numbers a one-line summary lists before "+N".
SUMMARY_INVOICES = 3


# --- formats --------------------------------------------------------------------------------------


def amount(value: Decimal | str) -> str:
    """``3 600,00 MAD`` (the thousands separator is a narrow no-break space, as everywhere)."""
    return format_fr(Decimal(value))


def channel_label(channel: str) -> str:
    try:
        return Channel(channel).label
    except ValueError:
        return channel


def clock(instant: datetime, now: datetime) -> str:
    """Casablanca wall-clock time: ``14:05`` the same local day, ``02/12 à 14:05`` otherwise."""
    local, today = to_local(instant), to_local(now)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%d/%m à %H:%M")


def expiry(deadline: datetime, now: datetime) -> str:
    """``expire à 14:05``: a time, never a countdown (the text stays as set until the next phase, and
    the Web UI may show it hours later)."""
    return f"expire à {clock(deadline, now)}"


def invoices(numbers: Sequence[str], limit: int = SUMMARY_INVOICES) -> str:
    """``facture 00069321`` / ``factures 00069321, 00069322 +3``."""
    if not numbers:
        return "aucune facture"
    shown = ", ".join(numbers[:limit])
    more = f" +{len(numbers) - limit}" if len(numbers) > limit else ""
    return f"{'facture' if len(numbers) == 1 else 'factures'} {shown}{more}"


def company(name: str, customs_code: str) -> str:
    return f"{name} ({customs_code})"


# --- static summaries and details (at start) -------------------------------------------------------


def payment_summary(
    channel: str, total: Decimal | str, company_name: str, customs_code: str, numbers: Sequence[str]
) -> str:
    """One line for the Web UI's list: channel, amount, company (customs code), invoice numbers."""
    return DASH.join(
        [channel_label(channel), amount(total), company(company_name, customs_code), invoices(numbers)]
    )


def payment_details(
    payment_id: str,
    channel: str,
    total: Decimal | str,
    company_name: str,
    customs_code: str,
    lines: Iterable[tuple[str, str, Decimal | str]],
) -> str:
    """Markdown for the workflow page: the attempt and each invoice (number, emitter, amount TTC), one
    list item each (the Web UI renders Markdown tables without cell spacing)."""
    rows = "\n".join(f"- **{number}** — émetteur {emitter} — {amount(ttc)}" for number, emitter, ttc in lines)
    return (
        f"**Paiement** {payment_id}\n\n"
        f"**Canal** : {channel_label(channel)}  \n"
        f"**Montant TTC** : {amount(total)}  \n"
        f"**Société** : {company_name}  \n"
        f"**Code douanier** : {customs_code}\n\n"
        f"**Factures**\n\n{rows}\n"
    )


def marsa_request_summary(
    terminal: str, customer_id: str, company_name: str, customs_code: str, invoice_number: str | None
) -> str:
    what = f"facture {invoice_number}" if invoice_number else f"client {customer_id}"
    return DASH.join(
        [f"Demande de factures MARSA MAROC {terminal}", what, company(company_name, customs_code)]
    )


def marsa_request_details(
    request_id: str,
    terminal: str,
    terminal_name: str,
    customer_id: str,
    company_name: str,
    customs_code: str,
    invoice_number: str | None,
) -> str:
    return (
        f"**Demande de factures MARSA MAROC** {request_id}\n\n"
        f"**Terminal** : {terminal} — {terminal_name}  \n"
        f"**Identifiant client MARSA MAROC** : {customer_id}  \n"
        f"**Facture recherchée** : {invoice_number or 'toutes les factures ouvertes'}  \n"
        f"**Société** : {company_name}  \n"
        f"**Code douanier** : {customs_code}\n"
    )


def unapplied_summary(unapplied_id: int, channel: str, total: Decimal | str, invoice_number: str) -> str:
    return DASH.join(
        [
            f"Affectation de l'encaissement non affecté n° {unapplied_id}",
            f"{channel_label(channel)} {amount(total)}",
            f"vers la facture {invoice_number}",
        ]
    )


def unapplied_details(
    unapplied_id: int,
    channel: str,
    total: Decimal | str,
    partner_reference: str | None,
    transaction_number: str | None,
    invoice_number: str,
    decided_by: str,
) -> str:
    return (
        f"**Encaissement non affecté** n° {unapplied_id}\n\n"
        f"**Canal** : {channel_label(channel)}  \n"
        f"**Montant** : {amount(total)}  \n"
        f"**Référence partenaire** : {partner_reference or '-'}  \n"
        f"**Transaction** : {transaction_number or '-'}  \n"
        f"**Facture visée** : {invoice_number}  \n"
        f"**Affecté par** : {decided_by} (finance)\n"
    )


# --- current details (at each phase) ---------------------------------------------------------------

RESERVING = "Réservation des factures en cours"


def payment_phase(view: PaymentView, now: datetime, declaration: dict[str, str] | None = None) -> str:
    """What a payment attempt waits for, or how it ended, in one line."""
    status = view.status
    if status == PaymentStatus.STARTED.value:
        return RESERVING
    deadline = datetime.fromisoformat(view.deadline) if view.deadline else None
    if status == PaymentStatus.AWAITING_PAYER.value:
        return _awaiting_payer(view, now, deadline)
    if status == PaymentStatus.AWAITING_CONFIRMATION.value:
        return _awaiting_confirmation(view, now, deadline, declaration or {})
    if status == PaymentStatus.SUCCEEDED.value:
        text = f"Réglée{DASH}transaction {view.transaction_id}" if view.transaction_id else "Réglée"
        if view.awaiting_emitters:
            text += f"{DASH}accusé de réception attendu de {', '.join(view.awaiting_emitters)}"
        return text
    if status == PaymentStatus.EXPIRED.value:
        return f"Libérée{DASH}{_reason(view.error) or 'délai de paiement dépassé'}"
    if status == PaymentStatus.CANCELLED.value:
        return f"Libérée{DASH}{_reason(view.error) or 'annulée'}"
    if status == PaymentStatus.FAILED.value:
        return f"Échec{DASH}{_reason(view.error) or 'tentative refusée'}"
    return status


def _awaiting_payer(view: PaymentView, now: datetime, deadline: datetime | None) -> str:
    action = view.next_action
    kind = action.type if action is not None else "none"
    until = f", {expiry(deadline, now)}" if deadline else ""
    if kind == "fatourati_reference" and action is not None:
        reference = (action.fields or {}).get("reference", "")
        text = f"Référence Fatourati {reference}{until}"
    elif kind == "payment_code":
        text = f"Code de paiement remis au payeur, à régler en agence{until}"
    elif kind == "sms_code":
        text = f"En attente du code SMS PayDirect{until}"
    elif view.channel == Channel.AMANPAY_AMANTY.value:
        text = f"En attente du payeur sur Amanpay (Amanty){until}"
    else:
        text = "En attente du payeur" + (f"{DASH}{expiry(deadline, now)}" if deadline else "")
    if view.declines:
        last = f" (dernier : {view.last_decline})" if view.last_decline else ""
        text += f"{DASH}{view.declines} refus{last}"
    return text


def _awaiting_confirmation(
    view: PaymentView, now: datetime, deadline: datetime | None, declaration: dict[str, str]
) -> str:
    if view.channel == Channel.CHEQUE.value:
        what = f"chèque n° {declaration.get('cheque_number', '-')}, {declaration.get('bank', '-')}"
    elif view.channel == Channel.BANK_TRANSFER.value:
        what = (
            f"virement réf. {declaration.get('transfer_reference', '-')}"
            f" du {declaration.get('transfer_date', '-')}"
        )
    else:
        partner = "CMI" if view.channel == Channel.CMI_CARD.value else channel_label(view.channel)
        return f"Paiement approuvé{DASH}confirmation de l'encaissement auprès de {partner}"
    until = f"{DASH}jusqu'au {clock(deadline, now)}" if deadline else ""
    return f"En attente de confirmation finance ({what}){until}"


def _reason(error: str | None) -> str:
    """The release reason, without free text typed by people (finance's rejection note)."""
    if not error:
        return ""
    if error.startswith("Rejeté par la finance"):
        return "rejetée par la finance"
    return error[:1].lower() + error[1:]


def request_phase(status: str, pages_done: int, pages_total: int, received: int, error: str | None) -> str:
    """A MARSA MAROC request: pages read so far, then how it ended."""
    if status == "completed":
        return f"Terminée{DASH}{received} facture(s) reçue(s) en {pages_done} page(s)"
    if status == "failed":
        return f"Échec{DASH}{error or 'service MARSA MAROC indisponible'}"
    if not pages_total:
        return "Interrogation de MARSA MAROC en cours"
    return f"Lecture des factures{DASH}page {pages_done}/{pages_total}, {received} facture(s) reçue(s)"


def unapplied_phase(status: str, invoice_number: str, reason: str | None = None) -> str:
    if status == "holding":
        return f"Réservation de la facture {invoice_number}"
    if status == "applying":
        return f"Affectation à la facture {invoice_number} en cours"
    if status == "applied":
        return f"Affecté à la facture {invoice_number}"
    return f"Refusé{DASH}{reason or 'affectation impossible'}"


def reconciliation_phase(candidates: int, done: int, findings: int | None, errors: int) -> str:
    if findings is not None:
        return f"Terminé{DASH}{candidates} cas revu(s), {findings} constat(s), {errors} erreur(s)"
    return f"Revue des cas{DASH}{done}/{candidates}, {errors} erreur(s)"


# --- activity summaries ----------------------------------------------------------------------------


def reserving(numbers: Sequence[str]) -> str:
    """``Réservation des factures 00069321`` (the guide's wording, one invoice or several)."""
    listed = ", ".join(numbers[:10]) + (f" +{len(numbers) - 10}" if len(numbers) > 10 else "")
    return f"Réservation des factures {listed}" if numbers else "Réservation des factures"


def releasing(status: str) -> str:
    try:
        label = PaymentStatus(status).label
    except ValueError:
        label = status
    return f"Libération des factures ({label})"


def settling(channel: str) -> str:
    return f"Règlement des factures ({channel_label(channel)})"


def issuing_receipt() -> str:
    return "Émission du reçu de paiement"


def notice_to(emitter_code: str) -> str:
    return f"Avis au partenaire {emitter_code}"


def marking_paid(emitter_code: str) -> str:
    return f"Factures payées, accusé de {emitter_code}"


def mail(kind: str) -> str:
    return f"E-mail {MAIL_KINDS.get(kind, kind)}"


MAIL_KINDS = {
    "payment_confirmed": "de confirmation du paiement",
    "fatourati_reference": "de la référence Fatourati",
    "fatourati_reminder": "de rappel de la référence Fatourati",
    "offline_unconfirmed": "à la finance : encaissement non confirmé",
}
