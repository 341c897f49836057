"""CSV exports: invoices (one row per line item, with the invoice totals), credit notes (one row per
line) and usage per customer.

Decimals are written as plain strings (never floats or exponents), times as ISO 8601 UTC, so the
files load into a spreadsheet or a warehouse without losing a cent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TextIO

from billing.core.contracts import CreditNote, Invoice

INVOICE_COLUMNS = (
    "invoice_id", "number", "customer_id", "status", "currency", "period_start", "period_end", "issued_at", "due_at",
    "line_number", "kind", "charge", "meter", "description", "quantity", "unit_price", "amount",
    "subtotal", "discount_total", "tax_rate", "tax", "total",
)
USAGE_COLUMNS = ("customer_id", "period_start", "period_end", "meter", "quantity")
CREDIT_NOTE_COLUMNS = (
    "credit_note_id", "number", "customer_id", "invoice_id", "currency", "issued_at", "line_number", "charge",
    "description", "quantity", "service_start", "service_end", "amount", "total",
)


def write_invoices_csv(invoices: Iterable[Invoice], out: TextIO) -> int:
    """Write one row per line item of every invoice; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INVOICE_COLUMNS)
    rows = 0
    for invoice in invoices:
        head = (invoice.id, invoice.number or "", invoice.customer_id, invoice.status.value, invoice.currency, _time(invoice.period_start),
                _time(invoice.period_end), _time(invoice.issued_at), _time(invoice.due_at))
        totals = (_dec(invoice.subtotal), _dec(invoice.discount_total), _dec(invoice.tax_rate), _dec(invoice.tax), _dec(invoice.total))
        for number, item in enumerate(invoice.line_items, start=1):
            writer.writerow((*head, number, item.kind.value, item.charge, item.meter or "", item.description,
                             _dec(item.quantity), _dec(item.unit_price), _dec(item.amount), *totals))
            rows += 1
    return rows


def write_credit_notes_csv(notes: Iterable[CreditNote], out: TextIO) -> int:
    """Write one row per line of every credit note; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CREDIT_NOTE_COLUMNS)
    rows = 0
    for note in notes:
        for number, line in enumerate(note.lines, start=1):
            writer.writerow((note.id, note.number, note.customer_id, note.invoice_id, note.currency, _time(note.issued_at),
                             number, line.charge, line.description, _dec(line.quantity), _time(line.service_start),
                             _time(line.service_end), _dec(line.amount), _dec(note.total)))
            rows += 1
    return rows


def write_usage_csv(usage: Iterable[tuple[str, object, object, Mapping[str, Decimal]]], out: TextIO) -> int:
    """Write ``(customer_id, period_start, period_end, {meter: quantity})`` as one row per meter."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    rows = 0
    for customer_id, start, end, quantities in usage:
        for meter in sorted(quantities):
            writer.writerow((customer_id, _time(start), _time(end), meter, _dec(quantities[meter])))
            rows += 1
    return rows


def _dec(value: Decimal) -> str:
    return f"{value:f}"


def _time(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else ""
