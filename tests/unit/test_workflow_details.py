"""The French texts finance reads in the Temporal Web UI (workflows/details.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from activities.types import NextAction
from portnet.money import NNBSP
from workflows import details
from workflows.types import PaymentView

# 12:05 UTC is 13:05 in Casablanca (UTC+1).
NOW = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)


def view(status: str, channel: str = "cmi_card", **fields: object) -> PaymentView:
    base = PaymentView("PN8A33D434E2DF", "payment-PN8A33D434E2DF", status, channel, "3600.00", [1])
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_summary_names_channel_amount_company_and_invoices() -> None:
    summary = details.payment_summary(
        "cmi_card", Decimal("3600.00"), "SATAA IMPORT EXPORT SARL AU", "290240", ["00069321"]
    )
    assert summary == (
        f"CMI carte bancaire — 3{NNBSP}600,00 MAD — SATAA IMPORT EXPORT SARL AU (290240) — facture 00069321"
    )
    assert "\n" not in summary


def test_summary_lists_the_first_invoices_then_how_many_more() -> None:
    numbers = [f"0000{i}" for i in range(1, 6)]
    summary = details.payment_summary("cheque", "12.50", "TMTA", "1247", numbers)
    assert summary.endswith("factures 00001, 00002, 00003 +2")
    assert "Chèque — 12,50 MAD" in summary


def test_details_table_has_every_invoice_with_its_emitter_and_amount() -> None:
    text = details.payment_details(
        "PN1",
        "cmi_fatourati",
        Decimal("5284.80"),
        "ASKA IMPRT EXPORT",
        "93583",
        [("00028653", "6110DOO116", Decimal("5000.00")), ("00028654", "611MARS001", "284.80")],
    )
    assert "**Canal** : CMI Fatourati" in text
    assert f"**Montant TTC** : 5{NNBSP}284,80 MAD" in text
    assert "**Code douanier** : 93583" in text
    assert f"- **00028653** — émetteur 6110DOO116 — 5{NNBSP}000,00 MAD\n" in text
    assert "- **00028654** — émetteur 611MARS001 — 284,80 MAD\n" in text


def test_awaiting_card_payer_shows_casablanca_deadline() -> None:
    deadline = (NOW + timedelta(minutes=20)).isoformat()
    assert details.payment_phase(view("awaiting_payer", deadline=deadline), NOW) == (
        "En attente du payeur — expire à 13:25"
    )


def test_declines_are_counted_with_the_last_reason() -> None:
    deadline = (NOW + timedelta(minutes=20)).isoformat()
    text = details.payment_phase(
        view("awaiting_payer", deadline=deadline, declines=2, last_decline="Carte expirée"), NOW
    )
    assert text.endswith("— 2 refus (dernier : Carte expirée)")


def test_fatourati_reference_and_its_expiry() -> None:
    action = NextAction(type="fatourati_reference", fields={"reference": "108912345678"})
    deadline = (NOW + timedelta(hours=2, minutes=41)).isoformat()
    text = details.payment_phase(
        view("awaiting_payer", "cmi_fatourati", next_action=action, deadline=deadline), NOW
    )
    assert text == "Référence Fatourati 108912345678, expire à 15:46"


def test_a_deadline_on_another_day_carries_its_date() -> None:
    deadline = (NOW + timedelta(days=30)).isoformat()
    text = details.payment_phase(
        view("awaiting_confirmation", "cheque", deadline=deadline),
        NOW,
        {"cheque_number": "4471203", "bank": "BMCE"},
    )
    assert text == "En attente de confirmation finance (chèque n° 4471203, BMCE) — jusqu'au 30/12 à 13:05"


def test_transfer_awaiting_finance_names_its_reference() -> None:
    text = details.payment_phase(
        view("awaiting_confirmation", "bank_transfer"),
        NOW,
        {"transfer_reference": "VIR-2026-118", "transfer_date": "2026-11-28"},
    )
    assert text == "En attente de confirmation finance (virement réf. VIR-2026-118 du 2026-11-28)"


def test_an_approved_card_waits_for_cmi_capture() -> None:
    assert details.payment_phase(view("awaiting_confirmation"), NOW) == (
        "Paiement approuvé — confirmation de l'encaissement auprès de CMI"
    )


def test_settled_then_released_phases() -> None:
    settled = view("succeeded", transaction_id="26331123456", awaiting_emitters=["611MARS001"])
    assert details.payment_phase(settled, NOW) == (
        "Réglée — transaction 26331123456 — accusé de réception attendu de 611MARS001"
    )
    settled.awaiting_emitters = []
    assert details.payment_phase(settled, NOW) == "Réglée — transaction 26331123456"
    expired = view("expired", error="Délai de paiement dépassé")
    assert details.payment_phase(expired, NOW) == "Libérée — délai de paiement dépassé"
    assert details.payment_phase(view("cancelled"), NOW) == "Libérée — annulée"


def test_finance_rejection_note_is_not_shown() -> None:
    rejected = view("failed", "cheque", error="Rejeté par la finance (finance) : M. Alaoui 0661000000")
    assert details.payment_phase(rejected, NOW) == "Échec — rejetée par la finance"


def test_marsa_request_names_terminal_customer_and_company() -> None:
    summary = details.marsa_request_summary("CASA", "C10045", "SATAA IMPORT EXPORT SARL AU", "290240", None)
    assert (
        summary
        == "Demande de factures MARSA MAROC CASA — client C10045 — SATAA IMPORT EXPORT SARL AU (290240)"
    )
    text = details.marsa_request_details(
        "MR1", "CASA", "Terminal Casablanca", "C10045", "SATAA", "290240", "F1"
    )
    assert "**Terminal** : CASA — Terminal Casablanca" in text and "**Facture recherchée** : F1" in text
    assert details.request_phase("running", 2, 5, 20, None) == (
        "Lecture des factures — page 2/5, 20 facture(s) reçue(s)"
    )
    assert (
        details.request_phase("completed", 5, 5, 47, None) == "Terminée — 47 facture(s) reçue(s) en 5 page(s)"
    )


def test_unapplied_and_activity_summaries() -> None:
    assert details.unapplied_summary(12, "cmi_fatourati", "3600.00", "00069321") == (
        f"Affectation de l'encaissement non affecté n° 12 — CMI Fatourati 3{NNBSP}600,00 MAD"
        " — vers la facture 00069321"
    )
    assert (
        details.unapplied_phase("refused", "00069321", "Facture déjà payée") == "Refusé — Facture déjà payée"
    )
    assert details.reserving(["00069321"]) == "Réservation des factures 00069321"
    assert details.reserving([str(n) for n in range(12)]).endswith("8, 9 +2")
    assert details.notice_to("611MARS001") == "Avis au partenaire 611MARS001"
    assert details.releasing("expired").startswith("Libération des factures (")
