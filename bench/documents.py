"""CPU to lay out the documents we issue: a receipt per settled payment, an invoice per PDF download.

Every settled payment lays its receipt out in the ``issue_receipt`` activity, and the confirmation
mail carries it: its layout is part of each payment's CPU. This lays out, in this process and
nothing else, the receipt of one invoice in French, English and Arabic, the receipt of twelve
invoices (each time another payment's: its own ids, time and transaction), and the guide's invoice,
``--count`` times each, and reports the CPU per document (the
process's CPU clock around each layout: what a worker thread would spend). The least of them is
the steadiest figure on a shared box, whose neighbours slow some layouts down.

    python -m bench.documents [--count 100]

Prints a Markdown table and writes bench/results/documents-*.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bench._common import markdown_table, percentile, say, write_results
from portnet.documents import (
    ClientInfo,
    EmitterInfo,
    InvoiceDocument,
    PaidInvoiceItem,
    PrestationItem,
    ReceiptDocument,
    render_invoice_pdf,
    render_receipt_pdf,
)

CLIENT = ClientInfo(
    name="SATAA IMPORT EXPORT SARL AU",
    customs_code="290240",
    ice="001525987000045",
    address="12 rue de l'Industrie, Aïn Sebaâ, Casablanca",
)
RECEIPT = ReceiptDocument(
    receipt_number="REC-2026-000123",
    payment_id="PN3F9A1C0B7E21",
    channel_label="CMI carte bancaire",
    paid_at=datetime(2026, 12, 1, 10, 15, 42),
    client=CLIENT,
    invoices=[PaidInvoiceItem(number="00069321", emitter_name="PORTNET", amount_ttc=Decimal("763.01"))],
    total_paid=Decimal("763.01"),
    partner_transaction_id="17309141532876",
    authorization_code="P47291",
    card_number="400000******0002",
    payer_name="Karim El Amrani",
    payer_email="k.elamrani@sataa.ma",
    verification_url="http://127.0.0.1:8000/verification/7K2M9QXR4TDW",
    verification_code="7K2M-9QXR-4TDW",
    verification_page="http://127.0.0.1:8000/verification",
)
TWELVE = [PaidInvoiceItem(f"2026/{n:05d}", "MARSA MAROC", Decimal("1250.40")) for n in range(12)]
INVOICE = InvoiceDocument(
    number="00069321",
    type_label="Principale",
    emitter=EmitterInfo("PORTNET", "PORTNET", "Casablanca", "294435", "40189256", "Bd Zerktouni, Casablanca"),
    client=CLIENT,
    invoice_date=datetime(2017, 10, 31),
    due_date=datetime(2017, 12, 30),
    status_label="Non réglée",
    amount_ht=Decimal("3000.00"),
    amount_tva=Decimal("600.00"),
    amount_ttc=Decimal("3600.00"),
    lines=[
        PrestationItem(
            "Abonnement Portnet", "Abonnement PORTNET", "Abonnement annuel IMP", datetime(2018, 10, 31)
        )
    ],
    description="Abonnement annuel au Guichet Unique PORTNET, profil importateur.",
)


def receipt(n: int, **changes: Any) -> ReceiptDocument:
    """The n-th payment's receipt: its own ids, time and transaction, as every settlement's is (the
    words laid out for the first time, not only those already measured)."""
    payment_id = f"PN{n:012X}"
    return replace(
        RECEIPT,
        payment_id=payment_id,
        receipt_number=f"REC-{payment_id}",
        paid_at=RECEIPT.paid_at + timedelta(seconds=37 * n),
        partner_transaction_id=f"{17309141532876 + n}",
        **changes,
    )


DOCUMENTS: dict[str, Callable[[int], bytes]] = {
    "receipt, 1 invoice, French": lambda n: render_receipt_pdf(receipt(n)),
    "receipt, 1 invoice, English": lambda n: render_receipt_pdf(receipt(n, language="en")),
    "receipt, 1 invoice, Arabic": lambda n: render_receipt_pdf(receipt(n, language="ar")),
    "receipt, 12 invoices, French": lambda n: render_receipt_pdf(
        receipt(n, invoices=TWELVE, total_paid=sum((i.amount_ttc for i in TWELVE), Decimal(0)))
    ),
    "invoice 00069321, French": lambda n: render_invoice_pdf(INVOICE),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100, help="layouts of each document measured")
    args = parser.parse_args(argv)
    rows, results = [], []
    for name, lay_out in DOCUMENTS.items():
        size = len(lay_out(0))  # imports and fonts loaded before the clock starts
        cpu_ms = []
        for n in range(1, args.count + 1):
            start = time.process_time()
            lay_out(n)
            cpu_ms.append((time.process_time() - start) * 1000)
        least, p50, p95 = min(cpu_ms), percentile(cpu_ms, 50), percentile(cpu_ms, 95)
        rows.append([name, args.count, least, p50, p95, size])
        results.append(
            {
                "document": name,
                "count": args.count,
                "min_cpu_ms": least,
                "p50_cpu_ms": p50,
                "p95_cpu_ms": p95,
                "bytes": size,
            }
        )
    say(markdown_table(["document", "count", "CPU ms min", "CPU ms p50", "CPU ms p95", "bytes"], rows))
    path = write_results("documents", {"documents": results}, argv)
    say(f"results written to {path}")
    return {"ok": True, "documents": results}


if __name__ == "__main__":
    main()
