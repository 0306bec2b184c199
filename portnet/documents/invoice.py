"""The invoice PDF, as the client would print it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from portnet.documents.layout import ORANGE, PortnetPDF
from portnet.documents.parties import ClientInfo, EmitterInfo, client_rows, emitter_rows, require_decimal
from portnet.documents.text import currency_label, format_date, format_money, or_dash


@dataclass(frozen=True)
class PrestationItem:
    prestation: str
    operation_type: str
    reference: str | None = None
    end_date: datetime | None = None


@dataclass(frozen=True)
class InvoiceDocument:
    """Labels (type, status) arrive already translated so that rendering owns no vocabulary."""

    number: str
    type_label: str
    emitter: EmitterInfo
    client: ClientInfo
    invoice_date: datetime
    status_label: str
    amount_ht: Decimal
    amount_tva: Decimal
    amount_ttc: Decimal
    due_date: datetime | None = None
    principal_number: str | None = None
    lines: Sequence[PrestationItem] = ()
    currency: str = "MAD"
    description: str | None = None

    def __post_init__(self) -> None:
        for name in ("amount_ht", "amount_tva", "amount_ttc"):
            require_decimal("InvoiceDocument", name, getattr(self, name))


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as the client would print it; same input, same bytes."""
    # A credit note must not be mistaken for a bill at a glance, so it gets its own heading.
    is_credit_note = doc.type_label.strip().lower() == "avoir"
    pdf = PortnetPDF(
        doc_title="Facture d'avoir" if is_credit_note else "Facture",
        doc_ref=doc.number,
        created=doc.invoice_date,
        subject=f"Facture {doc.number} - {doc.emitter.name} - {doc.client.name}",
        accent=ORANGE,
    )
    pdf.add_page()

    pdf.party_boxes(
        ("Émetteur", doc.emitter.name, emitter_rows(doc.emitter)),
        ("Client", doc.client.name, client_rows(doc.client)),
    )

    pdf.section_title("Informations de la facture")
    pdf.key_value_grid(
        [
            ("N° facture", doc.number),
            ("Date facture", format_date(doc.invoice_date)),
            ("Type", doc.type_label),
            ("Échéance", format_date(doc.due_date)),
            ("Facture principale", or_dash(doc.principal_number)),
            ("Statut", doc.status_label),
            ("Devise", currency_label(doc.currency)),
        ]
    )

    pdf.section_title("Prestations")
    pdf.data_table(
        headings=("Prestation", "Type d'opération", "Référence", "Date fin"),
        rows=[
            (line.prestation, line.operation_type, or_dash(line.reference), format_date(line.end_date))
            for line in doc.lines
        ],
        col_widths=(32, 30, 22, 16),
        text_align=("LEFT", "LEFT", "LEFT", "CENTER"),
        empty_text="Aucune prestation détaillée",
    )

    pdf.totals_box(
        [
            ("Montant HT", format_money(doc.amount_ht, doc.currency)),
            ("TVA", format_money(doc.amount_tva, doc.currency)),
            ("Montant TTC", format_money(doc.amount_ttc, doc.currency)),
        ]
    )

    if doc.description and doc.description.strip():
        pdf.section_title("Description")
        pdf.paragraph(doc.description)

    return bytes(pdf.output())
