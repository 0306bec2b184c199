"""Maps an invoice detail read from the ledger onto the PDF renderer's input."""

from __future__ import annotations

from portnet import documents
from portnet.queries import InvoiceDetail
from portnet.statuses import InvoiceStatus, InvoiceType


def invoice_document(detail: InvoiceDetail, language: str = "fr") -> documents.InvoiceDocument:
    inv, em, co = detail.invoice, detail.emitter, detail.company
    return documents.InvoiceDocument(
        number=inv.number,
        type_label=InvoiceType(inv.type).label,
        emitter=documents.EmitterInfo(em.name, em.code, em.rc_centre, em.rc_number, em.ifu, em.address),
        client=documents.ClientInfo(co.name, co.customs_code, co.ice, co.address),
        invoice_date=inv.invoice_date,
        status_label=InvoiceStatus(inv.status).label,
        amount_ht=inv.amount_ht,
        amount_tva=inv.amount_tva,
        amount_ttc=inv.amount_ttc,
        due_date=inv.due_date,
        principal_number=inv.principal_number,
        lines=[
            documents.PrestationItem(p.prestation, p.operation_type, p.reference, p.end_date)
            for p in detail.prestations
        ],
        currency=inv.currency,
        description=inv.description,
        language=language,  # the reader's: labels stay French msgids, translated as the PDF is drawn
    )
