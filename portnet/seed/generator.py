"""Draws realistic invoices from the catalogue, as plain rows ready for the bulk writer.

One generator serves both the demo (:mod:`portnet.seed.generated`) and the benchmarks
(:mod:`portnet.seed.bulk`): same ``random.Random`` state, same emitter ids and next numbers, same rows.
Rows are lists and tuples in the column order below rather than ORM objects, because building a
million ORM objects costs more than writing them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portnet.money import CENT
from portnet.seed.catalogue import (
    MAX_NUMBER,
    OLD_STATUS_TABLE,
    RECENT_STATUS_TABLE,
    VAT_RATES,
    VAT_TABLE,
    BillingProfile,
)
from portnet.seed.guide import CREATION_MESSAGE, document_name
from portnet.statuses import InvoiceStatus, InvoiceType

_AWAITING_PARTNER = InvoiceStatus.AWAITING_PARTNER.value
_PAID = InvoiceStatus.PAID.value
_CANCELLED = InvoiceStatus.CANCELLED.value
_PRINCIPALE = InvoiceType.PRINCIPALE.value
_AVOIR = InvoiceType.AVOIR.value
_COMPLEMENTAIRE = InvoiceType.COMPLEMENTAIRE.value
_ONE_DAY = timedelta(days=1)
_DAYS = tuple(timedelta(days=n) for n in range(15))


INVOICE_COLUMNS = (
    "id",
    "number",
    "type",
    "principal_number",
    "emitter_id",
    "company_id",
    "invoice_date",
    "due_date",
    "amount_ht",
    "amount_tva",
    "amount_ttc",
    "currency",
    "status",
    "payment_methods",
    "description",
    "cancelled_at",
    "created_at",
    "is_subscription",
)
LINE_COLUMNS = ("invoice_id", "prestation", "operation_type", "reference", "end_date")
MESSAGE_COLUMNS = (
    "invoice_id",
    "seq",
    "function",
    "name",
    "state",
    "created_at",
    "receiver",
    "observations",
    "needs_reply",
)
DOCUMENT_COLUMNS = ("invoice_id", "kind", "name", "description", "content_type", "created_at")


@dataclass(slots=True)
class _Draft:
    company_id: int
    profile: BillingProfile
    emitter_id: int
    invoice_date: datetime
    type: str
    lines: list[tuple[str, str, str, datetime]]
    amount_ht: Decimal
    vat_rate: Decimal
    status: str
    created_at: datetime
    description: str
    is_subscription: bool
    document_number: int


@dataclass
class Batch:
    """Rows of one batch; child rows point at their invoice by position until ids are known."""

    invoices: list[list[Any]]
    lines: list[tuple[Any, ...]]
    messages: list[tuple[Any, ...]]
    documents: list[tuple[Any, ...]]


class InvoiceGenerator:
    """Carries over from one batch to the next what numbering needs.

    That is each emitter's next invoice number, and each (emitter, company)'s latest principal
    invoices, which credit notes and complementary invoices refer to.
    """

    def __init__(
        self,
        rng: random.Random,
        emitter_ids: dict[str, int],
        next_numbers: dict[str, int],
        start: date,
        end: date,
    ) -> None:
        self.rng = rng
        self.rand = rng.random
        self.emitter_ids = emitter_ids
        self.next_numbers = dict(next_numbers)
        self.start_ordinal = start.toordinal()
        self.span = end.toordinal() - self.start_ordinal + 1
        self.recent_cutoff = end.toordinal() - 365
        self.principals: dict[tuple[str, int], list[str]] = {}
        self.midnights: dict[int, datetime] = {}

    def _draft(self, company_id: int, profiles: Sequence[BillingProfile]) -> _Draft:
        rand = self.rand
        profile = profiles[int(rand() * len(profiles))]
        ordinal = self.start_ordinal + int(rand() * self.span)
        invoice_date = self.midnights.get(ordinal)
        if invoice_date is None:
            day = date.fromordinal(ordinal)
            invoice_date = self.midnights[ordinal] = datetime(day.year, day.month, day.day)
        year = invoice_date.year
        # Invoices reach PortNet the next working morning (the guide's 31/10 00:00 -> 01/11 11:49).
        created_at = invoice_date + timedelta(days=1, minutes=480 + int(rand() * 600))
        if profile.subscription is not None and rand() < 0.2:
            item = profile.subscription
            reference = item.reference(rand, year)
            lines = [(item.prestation, item.operation_types[0], reference, invoice_date - _ONE_DAY)]
            cents = item.min_cents
            vat_rate = VAT_RATES[0]
            description = f"[REN]{reference}"
            is_subscription = True
            kind = _PRINCIPALE
        else:
            lines = []
            cents = 0
            items = profile.items
            for _ in range(1 + (rand() < 0.35) + (rand() < 0.15)):
                item = items[int(rand() * len(items))]
                operations = item.operation_types
                operation = operations[int(rand() * len(operations))]
                end_date = invoice_date - _DAYS[int(rand() * 15)]
                lines.append((item.prestation, operation, item.reference(rand, year), end_date))
                cents += item.min_cents + int(rand() * (item.max_cents - item.min_cents + 1))
            vat_rate = VAT_TABLE[int(rand() * 100)]
            first = lines[0]
            description = f"{first[0]} {first[1]} {first[2]}"
            is_subscription = False
            roll = rand()
            kind = _AVOIR if roll < 0.06 else _COMPLEMENTAIRE if roll < 0.14 else _PRINCIPALE
        table = OLD_STATUS_TABLE if ordinal < self.recent_cutoff else RECENT_STATUS_TABLE
        status = table[int(rand() * 100)]
        if status == _AWAITING_PARTNER and profile.settles_directly:
            # PORTNET settles directly: its invoices never wait for a partner's acknowledgement.
            status = _PAID
        return _Draft(
            company_id=company_id,
            profile=profile,
            emitter_id=self.emitter_ids[profile.code],
            invoice_date=invoice_date,
            type=kind,
            lines=lines,
            amount_ht=Decimal(cents).scaleb(-2),
            vat_rate=vat_rate,
            status=status,
            created_at=created_at,
            description=description,
            is_subscription=is_subscription,
            document_number=100 + int(rand() * 999_900),
        )

    def batch(
        self,
        plan: Sequence[tuple[int, Sequence[BillingProfile]]],
        *,
        with_lines: bool = True,
        with_messages: bool = True,
        with_documents: bool = True,
    ) -> Batch:
        """One batch of invoices, numbered per emitter in date order."""
        drafts = [self._draft(*entry) for entry in plan]
        drafts.sort(key=lambda d: d.invoice_date)
        rand = self.rand
        batch = Batch([], [], [], [])
        for position, draft in enumerate(drafts):
            code = draft.profile.code
            number_value = self.next_numbers[code]
            if number_value > MAX_NUMBER:
                raise ValueError(f"emitter {code} has run out of 8-digit invoice numbers")
            self.next_numbers[code] = number_value + 1
            number = f"{number_value:08d}"
            principal_number = None
            key = (code, draft.company_id)
            earlier = self.principals.setdefault(key, [])
            kind = draft.type
            description = draft.description
            if kind != _PRINCIPALE:
                if earlier:
                    principal_number = earlier[int(rand() * len(earlier))]
                    prefix = "Avoir sur facture" if kind == _AVOIR else "Complément facture"
                    description = f"{prefix} {principal_number} - {description}"
                else:
                    kind = _PRINCIPALE
            if kind == _PRINCIPALE:
                earlier.append(number)
                if len(earlier) > 20:
                    del earlier[0]
            amount_tva = (draft.amount_ht * draft.vat_rate).quantize(CENT, rounding=ROUND_HALF_UP)
            cancelled_at = None
            if draft.status == _CANCELLED:
                delay = timedelta(days=1 + int(rand() * 45), minutes=int(rand() * 600))
                cancelled_at = draft.created_at + delay
            batch.invoices.append(
                [
                    None,
                    number,
                    kind,
                    principal_number,
                    draft.emitter_id,
                    draft.company_id,
                    draft.invoice_date,
                    draft.invoice_date + timedelta(days=draft.profile.due_days),
                    draft.amount_ht,
                    amount_tva,
                    draft.amount_ht + amount_tva,
                    "MAD",
                    draft.status,
                    draft.profile.payment_methods,
                    description,
                    cancelled_at,
                    draft.created_at,
                    draft.is_subscription,
                ]
            )
            if with_lines:
                batch.lines.extend((position, *line) for line in draft.lines)
            if with_messages:
                batch.messages.append(
                    (
                        position,
                        1,
                        CREATION_MESSAGE["function"],
                        CREATION_MESSAGE["name"],
                        InvoiceStatus.UNPAID.value,
                        draft.created_at,
                        CREATION_MESSAGE["receiver"],
                        CREATION_MESSAGE["observations"],
                        False,
                    )
                )
            if with_documents:
                batch.documents.append(
                    (
                        position,
                        "invoice",
                        document_name(draft.document_number, code, draft.created_at, number),
                        "Facture",
                        "application/pdf",
                        draft.created_at,
                    )
                )
        return batch
