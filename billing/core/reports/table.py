"""A usage report as one rectangular table (the CSV format): a ``section`` column says what each row is.

``total``, ``daily`` (key = day) and ``top_dimension`` (key = dimension group) rows per meter in its
unit; ``cost_line`` rows (key = description, unit = currency) and one ``cost_total``; one ``invoice`` row
per invoice of the period (key = number or id, detail = status); one ``alert`` row per alert (key =
rule, detail = type and time).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from billing.core.reports.usage import UsageReport

COLUMNS = ("section", "meter", "key", "value", "unit", "detail")


def number(value: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros (`1E+3` -> `1000`)."""
    return f"{value.normalize():f}"


def rows(report: UsageReport) -> list[tuple[str, str, str, str, str, str]]:
    """The report's rows in :data:`COLUMNS` order."""
    out = []
    for m in report.meters:
        out.append(("total", m.meter, "", number(m.total), m.unit, m.aggregation))
        out.extend(("daily", m.meter, day.isoformat(), number(value), m.unit, "") for day, value in m.daily)
        out.extend(("top_dimension", m.meter, group, number(value), m.unit, "") for group, value in m.top)
    if report.cost is not None:
        cost = report.cost
        out.extend(("cost_line", line.meter or "", line.description, number(line.amount), cost.currency, line.kind.value)
                   for line in cost.line_items)
        out.append(("cost_total", "", "total", number(cost.total), cost.currency, report.cost_note))
    out.extend(("invoice", "", inv.number or inv.id, number(inv.total), inv.currency, inv.status.value) for inv in report.invoices)
    out.extend(("alert", a.meter, a.rule, number(a.value), "", f"{a.type} at {a.detected_at:%Y-%m-%dT%H:%M:%SZ}")
               for a in report.alerts)
    return out


def to_csv(report: UsageReport) -> str:
    """The report as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(report))
    return buffer.getvalue()
