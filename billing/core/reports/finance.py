"""A month's finance summary (booked, collected, outstanding, MRR movements) from the answers of the
`billing report` questions, never a formula of its own.

Each figure is one column of a question's row for the month, or a count or sum over the rows of
``outstanding_payments`` (every outstanding invoice at the metrics' as-of time, and those of the
invoices booked in the month). Money is USD at the static reporting rates, as in the marts. The CSV
is one table: ``section, metric, value, unit``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.core.pricing.proration import Period
from billing.core.reports.table import number

COLUMNS = ("section", "metric", "value", "unit")
USD = "USD"
MOVEMENTS = ("new_mrr_usd", "expansion_mrr_usd", "contraction_mrr_usd", "churned_mrr_usd")
"""The MRR movements between the starting and the ending MRR, in that order."""

RATIOS = frozenset({"logo_churn_rate", "net_revenue_retention"})
"""Figures that have no value (rather than 0) for a month without a row."""
Row = Mapping[str, object]
"""One row of a question's answer, by column name."""


@dataclass(frozen=True)
class Figure:
    """One number of the summary."""

    section: str
    metric: str
    value: Decimal | int | float | None
    unit: str


@dataclass(frozen=True)
class FinanceSummary:
    """What a finance summary shows."""

    period: Period
    generated_at: datetime
    as_of: datetime | None
    """The metrics' as-of time (the latest business event of the warehouse); None without outstanding invoices."""
    figures: tuple[Figure, ...]

    def section(self, name: str) -> tuple[Figure, ...]:
        return tuple(f for f in self.figures if f.section == name)

    def value(self, section: str, metric: str) -> Decimal | int | float | None:
        return next(f.value for f in self.figures if (f.section, f.metric) == (section, metric))


def _unit(column: str) -> str:
    return USD if column.endswith("_usd") else ""


def _columns(section: str, row: Row | None, columns: Sequence[str]) -> list[Figure]:
    """The figures of ``columns`` of ``row``: 0 (or none for ratios) when the month has no row."""
    return [Figure(section, c, row[c] if row is not None else (None if c in RATIOS else 0), _unit(c)) for c in columns]


def _outstanding(prefix: str, rows: Sequence[Row]) -> list[Figure]:
    overdue = [r for r in rows if r["overdue"]]
    return [Figure("outstanding", f"{prefix}_invoices", len(rows), ""),
            Figure("outstanding", f"{prefix}_usd", sum((Decimal(r["total_usd"]) for r in rows), Decimal(0)), USD),
            Figure("outstanding", f"{prefix}_overdue_invoices", len(overdue), ""),
            Figure("outstanding", f"{prefix}_overdue_usd", sum((Decimal(r["total_usd"]) for r in overdue), Decimal(0)), USD)]


def summarize(period: Period, generated_at: datetime, seasonality: Row | None, movements: Row | None,
              outstanding_of_month: Sequence[Row], outstanding: Sequence[Row]) -> FinanceSummary:
    """The summary of ``period`` from its ``billing_seasonality`` and ``mrr_movements`` rows (None: no row for
    the month) and the ``outstanding_payments`` rows of the month's booked invoices and of every invoice."""
    figures = [*_columns("booked", seasonality, ("invoices", "booked_usd")),
               *_columns("collected", seasonality, ("payments", "collected_usd")),
               *_outstanding("booked_in_month", outstanding_of_month), *_outstanding("all", outstanding),
               *_columns("mrr", movements, ("starting_mrr_usd", *MOVEMENTS, "ending_mrr_usd", "starting_customers",
                                            "churned_customers", *sorted(RATIOS)))]
    as_of = max((r["as_of"] for r in outstanding), default=None)
    return FinanceSummary(period, generated_at, as_of, tuple(figures))


def text(value: Decimal | int | float | None) -> str:
    """A figure's value as printed in the CSV and PDF."""
    if value is None:
        return ""
    return number(value) if isinstance(value, Decimal) else str(value)


def to_csv(summary: FinanceSummary) -> str:
    """The summary as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((f.section, f.metric, text(f.value), f.unit) for f in summary.figures)
    return buffer.getvalue()
