"""Writes generated rows fast, on the session's own connection and transaction.

Bulk rows go through SQLAlchemy Core (no ORM objects): a COPY on PostgreSQL, a plain DB-API
``executemany`` on SQLite, after the same bind processing the ORM would apply (``MoneyType``
centimes, SQLite's datetime text format), so the rows read back exactly like ORM-written ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import SQLModel, col

from portnet.models import Document, Invoice, InvoiceMessage, MoneyType, PrestationLine
from portnet.seed.generator import (
    DOCUMENT_COLUMNS,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    MESSAGE_COLUMNS,
    Batch,
)


def _table(model: type[SQLModel]) -> sa.Table:
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


def _centimes_of_quantized(value: Decimal) -> int:
    scaled = value.scaleb(2)
    centimes = int(scaled)
    if centimes != scaled:
        raise ValueError(f"bulk amounts must be quantized to the centime: {value!r}")
    return centimes


def _sqlite_datetime_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ", "microseconds")


class BulkWriter:
    """Inserts plain rows fast on the session's own connection and transaction."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect

    def reserve_invoice_ids(self, count: int) -> list[int]:
        """Ids taken up front so that lines, messages and documents can point at their invoice."""
        if count == 0:
            return []
        if self.dialect.name == "postgresql":
            # From the column's own sequence: later ORM inserts carry on after these ids.
            rows = self.connection.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('invoice', 'id')) FROM generate_series(1, :n)"
                ),
                {"n": count},
            ).all()
            return sorted(row[0] for row in rows)
        highest = self.connection.execute(sa.select(sa.func.max(col(Invoice.id)))).scalar() or 0
        return list(range(highest + 1, highest + 1 + count))

    def _processor(self, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
        if isinstance(column.type, MoneyType):
            # The generator hands over Decimals already quantized to the centime, which MoneyType's
            # own to_money() would re-establish at several times the cost.
            return _centimes_of_quantized
        if isinstance(column.type, sa.Boolean):
            return None  # both drivers take Python bools as they are
        processor = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        if processor is not None and isinstance(column.type, sa.DateTime):
            # SQLite stores datetimes as text; isoformat() writes the very same text in C, ten times
            # faster. Checked rather than assumed, in case SQLAlchemy ever changes its format.
            sample = datetime(2017, 11, 1, 11, 49, 0, 1234)
            if processor(sample) == sample.isoformat(" ", "microseconds"):
                return _sqlite_datetime_text
        return processor

    def insert(self, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect.name not in ("postgresql", "sqlite"):
            self.connection.execute(sa.insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
            return
        processors = [
            (index, processor)
            for index, name in enumerate(columns)
            if (processor := self._processor(table.c[name])) is not None
        ]
        if processors:
            processed: list[Sequence[Any]] = []
            for row in rows:
                values = list(row)
                for index, processor in processors:
                    values[index] = processor(values[index])
                processed.append(values)
            rows = processed
        column_list = ", ".join(self.dialect.identifier_preparer.quote(name) for name in columns)
        table_name = self.dialect.identifier_preparer.format_table(table)
        if self.dialect.name == "postgresql":
            raw = self.connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join("?" for _ in columns)
            self.connection.exec_driver_sql(
                f"INSERT INTO {table_name} ({column_list}) VALUES ({placeholders})",  # noqa: S608
                [tuple(row) for row in rows],
            )

    def write(self, batch: Batch) -> Counter[str]:
        ids = self.reserve_invoice_ids(len(batch.invoices))
        for invoice_id, row in zip(ids, batch.invoices, strict=True):
            row[0] = invoice_id
        self.insert(_table(Invoice), INVOICE_COLUMNS, batch.invoices)
        children: list[tuple[sa.Table, tuple[str, ...], list[tuple[Any, ...]], str]] = [
            (_table(PrestationLine), LINE_COLUMNS, batch.lines, "prestation_lines"),
            (_table(InvoiceMessage), MESSAGE_COLUMNS, batch.messages, "invoice_messages"),
            (_table(Document), DOCUMENT_COLUMNS, batch.documents, "documents"),
        ]
        counts: Counter[str] = Counter(invoices=len(batch.invoices))
        for table, columns, rows, label in children:
            self.insert(table, columns, [(ids[row[0]], *row[1:]) for row in rows])
            counts[label] += len(rows)
        return counts
