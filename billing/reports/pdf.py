"""Reports as PDFs (reportlab). A customer usage report: per meter its total, a bar chart of the daily
series and the top dimension groups; then the period priced so far, its invoices and its alerts. A
finance summary: its figures per section and a bar chart of the MRR movements. Numbers are printed as
in the CSV (:func:`billing.core.reports.table.number`)."""

from __future__ import annotations

from pathlib import Path

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.core.reports.finance import MOVEMENTS, FinanceSummary, text
from billing.core.reports.table import number
from billing.core.reports.usage import MeterUsage, UsageReport
from billing.invoicing.pdf import ACCENT, FONT, RULE, SHADE, _p, register_fonts

WIDTH = A4[0] - 36 * mm


def _document(path: Path, title: str) -> SimpleDocTemplate:
    register_fonts()
    return SimpleDocTemplate(str(path), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                             bottomMargin=16 * mm, title=title)


def render(report: UsageReport, path: Path) -> Path:
    """Write ``report`` as a PDF at ``path``; returns the path."""
    doc = _document(path, f"Usage report {report.customer_id} {report.period.start:%Y-%m}")
    story = [_p(f"Usage report {report.period.start:%Y-%m}", "brand"),
             _p(f"{report.company_name} ({report.customer_id}), generated {report.generated_at:%Y-%m-%d %H:%M} UTC", "muted"),
             Spacer(1, 6 * mm)]
    if not report.meters:
        story.append(_p("No usage in this period."))
    for meter in report.meters:
        story.append(KeepTogether(_meter(meter)))
    story += [Spacer(1, 4 * mm), _p("Cost so far", "bold"), *_cost(report),
              Spacer(1, 4 * mm), _p("Invoices of the period", "bold"),
              _table(["invoice", "status", "total"], [[i.number or i.id, i.status.value, f"{number(i.total)} {i.currency}"]
                                                      for i in report.invoices]) if report.invoices else _p("None.", "muted"),
              Spacer(1, 4 * mm), _p("Alerts", "bold"),
              _table(["detected", "alert", "meter", "value"], [[f"{a.detected_at:%Y-%m-%d %H:%M}", f"{a.rule} ({a.type})", a.meter,
                                                               number(a.value)] for a in report.alerts])
              if report.alerts else _p("No alerts fired in this period.", "muted")]
    doc.build(story)
    return path


def _meter(meter: MeterUsage) -> list:
    title = _p(f"{meter.meter}: total {number(meter.total)} {meter.unit} ({meter.aggregation.lower()})", "bold")
    return [title, _chart(meter), _table(["top dimensions", meter.unit], [[group, number(value)] for group, value in meter.top]),
            Spacer(1, 5 * mm)]


SECTIONS = {"booked": "Booked (finalized or paid invoices issued in the month, before tax)",
            "collected": "Collected (succeeded payments net of refunds, by the month they succeeded)",
            "outstanding": "Outstanding (finalized, not paid) at the as-of time: of the month's invoices, and all",
            "mrr": "MRR movements (previous month's end to this month's end)"}


def render_finance(summary: FinanceSummary, path: Path) -> Path:
    """Write ``summary`` as a PDF at ``path``; returns the path."""
    doc = _document(path, f"Finance summary {summary.period.start:%Y-%m}")
    as_of = f", metrics as of {summary.as_of:%Y-%m-%d %H:%M} UTC" if summary.as_of else ""
    story = [_p(f"Finance summary {summary.period.start:%Y-%m}", "brand"),
             _p(f"USD at the static reporting rates; generated {summary.generated_at:%Y-%m-%d %H:%M} UTC{as_of}", "muted"),
             Spacer(1, 6 * mm)]
    for section, title in SECTIONS.items():
        story += [_p(title, "bold"), _table(["metric", "value"], [[f.metric, f"{text(f.value)} {f.unit}".strip()]
                                                                 for f in summary.section(section)]), Spacer(1, 4 * mm)]
    story.append(_bars([(name.removesuffix("_mrr_usd"), summary.value("mrr", name)) for name in MOVEMENTS]))
    doc.build(story)
    return path


def _chart(meter: MeterUsage) -> Drawing:
    return _bars([(f"{day:%d}", value) for day, value in meter.daily])


def _bars(series: list[tuple[str, object]]) -> Drawing:
    drawing = Drawing(WIDTH, 48 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 8 * mm, WIDTH - 16 * mm, 36 * mm
    chart.data = [[float(value) for _label, value in series] or [0.0]]
    chart.categoryAxis.categoryNames = [label for label, _value in series]
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = min(0.0, *chart.data[0])
    chart.bars[0].fillColor = ACCENT
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    return drawing


def _cost(report: UsageReport) -> list:
    cost = report.cost
    if cost is None:
        return [_p(report.cost_note, "muted")]
    rows = [[line.description, number(line.quantity), f"{number(line.amount)} {cost.currency}"] for line in cost.line_items]
    rows.append(["Total", "", f"{number(cost.total)} {cost.currency}"])
    return [_table(["charge", "quantity", "amount"], rows), _p(report.cost_note, "muted")]


def _table(header: list[str], rows: list[list[str]]) -> Table:
    table = Table([[_p(h, "head") for h in header], *[[_p(str(c)) for c in row] for row in rows]], repeatRows=1,
                  colWidths=[WIDTH / len(header)] * len(header))
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), ACCENT), ("ROWBACKGROUNDS", (0, 1), (-1, -1), [None, SHADE]),
                               ("LINEBELOW", (0, -1), (-1, -1), 0.5, RULE), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table
