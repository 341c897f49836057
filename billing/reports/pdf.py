"""Reports as PDFs (reportlab). A customer usage report: per meter its total, a bar chart of the daily
series and the top dimension groups; then the period priced so far, its invoices and its alerts. A
finance summary: its figures per section and a bar chart of the MRR movements. Numbers are printed as
in the CSV (:func:`billing.core.reports.table.number`)."""

from __future__ import annotations

from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.core.reports.finance import MOVEMENTS, FinanceSummary, text
from billing.core.reports.scale import ticks
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


def _chart(meter: MeterUsage) -> _Bars:
    return _bars([(f"{day:%d}", value) for day, value in meter.daily])


class _Bars(Flowable):
    """A bar chart drawn straight on the canvas: grid lines at round values, bars from 0, a label under each bar.
    (reportlab.graphics' chart widgets drew the same in ~5x the time of the rest of a report.)"""

    HEIGHT, LEFT, BOTTOM = 48 * mm, 12 * mm, 8 * mm

    def __init__(self, series: list[tuple[str, float]]):
        super().__init__()
        self.series = series

    def wrap(self, _width: float, _height: float) -> tuple[float, float]:
        return WIDTH, self.HEIGHT

    def draw(self) -> None:
        canvas, values = self.canv, [value for _label, value in self.series]
        steps = ticks(min(values, default=0.0), max(values, default=0.0))
        plot_height, plot_width = self.HEIGHT - self.BOTTOM - 4 * mm, WIDTH - self.LEFT - 4 * mm
        scale = plot_height / (steps[-1] - steps[0])

        def y(value: float) -> float:
            return self.BOTTOM + (value - steps[0]) * scale

        canvas.setFont(FONT, 6)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        for step in steps:
            canvas.line(self.LEFT, y(step), self.LEFT + plot_width, y(step))
            canvas.drawRightString(self.LEFT - 1.5 * mm, y(step) - 2, f"{step:,.6g}")
        slot = plot_width / max(1, len(values))
        canvas.setFillColor(ACCENT)
        for i, value in enumerate(values):
            canvas.rect(self.LEFT + (i + 0.15) * slot, y(min(value, 0.0)), 0.7 * slot, abs(value) * scale, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        for i, (label, _value) in enumerate(self.series):
            canvas.drawCentredString(self.LEFT + (i + 0.5) * slot, self.BOTTOM - 3 * mm, label)


def _bars(series: list[tuple[str, object]]) -> _Bars:
    return _Bars([(label, float(value)) for label, value in series])


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
