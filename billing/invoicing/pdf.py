"""Render an ``Invoice`` or a ``CreditNote`` contract as a one-currency PDF with reportlab.

The invoice layout: seller header, bill-to and invoice facts, one row per line item followed by its
computation steps (tier range, units, unit price, flat fee, subtotal) in small grey type, then
subtotal, adjustments, tax, total due. A credit note has the same header and parties, the invoice
it credits, one row per credited fee (share of the cycle, service dates, amount) and the total
credited to the customer's balance. Fonts are the Bitstream Vera TrueType fonts bundled with
reportlab (embedded, Unicode), so names with accents print correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.core.contracts import AdjustmentKind, CreditNote, Customer, Invoice
from billing.core.pricing.money import Currency, currency

ACCENT = colors.HexColor("#1f4e79")
MUTED = colors.HexColor("#6b7280")
RULE = colors.HexColor("#d1d5db")
SHADE = colors.HexColor("#f3f6fa")
FONT, BOLD = "InvoiceSans", "InvoiceSans-Bold"


@dataclass(frozen=True)
class Branding:
    """The seller printed at the top of every invoice."""

    company_name: str
    address_lines: tuple[str, ...] = ()
    email: str = ""

    @classmethod
    def from_settings(cls) -> Branding:
        """Branding from ``BILLING_INVOICE_COMPANY_*``."""
        from billing.settings import get_settings

        s = get_settings()
        lines = tuple(line for line in s.invoice_company_address.splitlines() if line.strip())
        return cls(s.invoice_company_name, lines, s.invoice_company_email)


@dataclass(frozen=True)
class BillTo:
    """Who the invoice is addressed to."""

    name: str
    customer_id: str
    email: str = ""
    lines: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_customer(cls, customer: Customer) -> BillTo:
        """Bill-to block from the Customer contract."""
        return cls(customer.company_name, customer.id, customer.email, (f"Country: {customer.country}",))


def _document(path: Path, title: str, branding: Branding, bill_to: BillTo) -> SimpleDocTemplate:
    """An A4 document at ``path`` (fonts registered, folder created) titled ``title``, from the issuer to ``bill_to``."""
    register_fonts()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
        title=title, author=branding.company_name, subject=f"{title} for {bill_to.name}",
    )


def render_pdf(invoice: Invoice, bill_to: BillTo, path: Path, branding: Branding | None = None) -> Path:
    """Write ``invoice`` as a PDF at ``path`` and return the path."""
    branding = branding or Branding.from_settings()
    money = currency(invoice.currency)
    doc = _document(path, f"Invoice {invoice.id}", branding, bill_to)
    story = [
        _header(branding, "INVOICE", invoice.number or invoice.id, invoice.status.value),
        Spacer(1, 8 * mm),
        _parties(invoice, bill_to),
        Spacer(1, 8 * mm),
        _lines(invoice, money, doc.width),
        Spacer(1, 4 * mm),
        _totals(invoice, money, doc.width),
        Spacer(1, 10 * mm),
        Paragraph(
            f"All amounts in {money.code}. Each line is rounded half-up to {money.minor_units} decimal(s); "
            "the grey rows show how it was computed. Please pay by the due date and quote the invoice number.",
            STYLES["note"],
        ),
    ]
    footer = _footer(branding, f"Invoice {invoice.id}")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


def render_credit_note_pdf(note: CreditNote, bill_to: BillTo, path: Path, branding: Branding | None = None) -> Path:
    """Write ``note`` as a PDF at ``path`` and return the path."""
    branding = branding or Branding.from_settings()
    money = currency(note.currency)
    doc = _document(path, f"Credit note {note.id}", branding, bill_to)
    facts = [("Credit note number", note.number), ("Credit note id", note.id), ("Credits invoice", note.invoice_id),
             ("Issue date", _date(note.issued_at)), ("Currency", note.currency)]
    story = [
        _header(branding, "CREDIT NOTE", note.number, "issued"),
        Spacer(1, 8 * mm),
        _party_table(bill_to, facts),
        Spacer(1, 6 * mm),
        _p(note.reason, "muted"),
        Spacer(1, 4 * mm),
        _credit_lines(note, money, doc.width),
        Spacer(1, 10 * mm),
        Paragraph(f"All amounts in {money.code}. The total is credited to your account balance and drawn by your next "
                  "invoices before anything is due.", STYLES["note"]),
    ]
    footer = _footer(branding, f"Credit note {note.id}")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


def register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    fonts = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(fonts / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(fonts / "VeraBd.ttf")))


def _style(name: str, size: float = 9, font: str = FONT, color=colors.black, align: int = 0,
           leading: float | None = None) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=leading or size * 1.3, textColor=color, alignment=align)


STYLES = {
    "brand": _style("brand", 18, BOLD, ACCENT),
    "title": _style("title", 22, BOLD, ACCENT, TA_RIGHT),
    "text": _style("text"),
    "muted": _style("muted", 8.5, color=MUTED),
    "muted_right": _style("muted_right", 8.5, color=MUTED, align=TA_RIGHT),
    "label": _style("label", 7.5, BOLD, MUTED),
    "right": _style("right", align=TA_RIGHT),
    "bold": _style("bold", font=BOLD),
    "bold_right": _style("bold_right", font=BOLD, align=TA_RIGHT),
    "step": _style("step", 7.5, color=MUTED),
    "step_right": _style("step_right", 7.5, color=MUTED, align=TA_RIGHT),
    "head": _style("head", 8, BOLD, colors.white),
    "head_right": _style("head_right", 8, BOLD, colors.white, TA_RIGHT),
    "total": _style("total", 11, BOLD, ACCENT, TA_RIGHT),
    "note": _style("note", 7.5, color=MUTED),
}


def _p(text: str, style: str = "text") -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), STYLES[style])


def _number(value: Decimal) -> str:
    """A quantity or unit price without exponent or trailing zeros: ``1E+6 -> 1,000,000``."""
    return f"{value.normalize():,f}"


def _price(value: Decimal, money: Currency) -> str:
    """A price or exact amount with at least the currency's decimals: ``99 -> 99.00``, ``0.0003`` kept."""
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > money.minor_units:
        return _number(value)
    return f"{value:,.{money.minor_units}f}"


def _date(moment) -> str:
    return moment.strftime("%d %b %Y") if moment else "-"


def _header(branding: Branding, kind: str, number: str, status: str) -> Table:
    seller = [_p(branding.company_name, "brand"), *(_p(line, "muted") for line in branding.address_lines)]
    if branding.email:
        seller.append(_p(branding.email, "muted"))
    title = [_p(kind, "title"), _p(f"No. {number}", "right"), _p(status.upper(), "muted_right")]
    table = Table([[seller, title]], colWidths=["60%", "40%"])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, 0), 1.2, ACCENT),
                               ("BOTTOMPADDING", (0, 0), (-1, 0), 8)]))
    return table


def _parties(invoice: Invoice, bill_to: BillTo) -> Table:
    last_day = invoice.period_end - timedelta(microseconds=1)  # the period is half-open [start, end)
    return _party_table(bill_to, [
        ("Invoice number", invoice.number or "(assigned when finalized)"),
        ("Invoice id", invoice.id),
        *((("Replaces", invoice.replaces),) if invoice.replaces else ()),
        ("Issue date", _date(invoice.issued_at)),
        ("Due date", _date(invoice.due_at)),
        ("Billing period", f"{_date(invoice.period_start)} – {_date(last_day)}"),
        ("Currency", invoice.currency),
    ])


def _party_table(bill_to: BillTo, facts: list[tuple[str, str]]) -> Table:
    """The bill-to block beside the document's facts (label, value)."""
    customer = [_p("BILL TO", "label"), _p(bill_to.name, "bold"), *(_p(line, "muted") for line in (bill_to.email, *bill_to.lines) if line)]
    customer.append(_p(f"Customer ID: {bill_to.customer_id}", "muted"))
    rows = [[_p(label.upper(), "label"), _p(value, "right")] for label, value in facts]
    facts_table = Table(rows, colWidths=[32 * mm, 50 * mm])
    facts_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                     ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    table = Table([[customer, facts_table]], colWidths=["55%", "45%"])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 0), (1, 0), "RIGHT")]))
    return table


def _lines(invoice: Invoice, money: Currency, width: float) -> Table:
    rows = [[_p("DESCRIPTION", "head"), _p("QUANTITY", "head_right"), _p("UNIT PRICE", "head_right"),
             _p(f"AMOUNT ({money.code})", "head_right")]]
    styles = [
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for item in invoice.line_items:
        start = len(rows)
        steps = item.breakdown
        single = len(steps) == 1 and steps[0].quantity == item.quantity
        rows.append([
            _p(item.description or item.charge, "bold"),
            _p(_number(item.quantity), "right"),
            _p(_price(steps[0].unit_price, money) if single else "", "right"),
            _p(f"{money.round(item.amount):,.{money.minor_units}f}", "bold_right"),
        ])
        if not (single and steps[0].amount == item.amount):
            for step in steps:
                flat = step.details.get("flat_fee")
                price = _price(step.unit_price, money) + (f" + {_price(Decimal(flat), money)} flat" if flat else "")
                rows.append([
                    _p(f"    {step.description}", "step"),
                    _p(_number(step.quantity), "step_right"),
                    _p(price, "step_right"),
                    _p(_price(step.amount, money), "step_right"),
                ])
        styles.append(("LINEBELOW", (0, len(rows) - 1), (-1, len(rows) - 1), 0.4, RULE))
        styles.append(("TOPPADDING", (0, start), (-1, start), 6))
    table = Table(rows, colWidths=[width * 0.44, width * 0.14, width * 0.24, width * 0.18], repeatRows=1)
    table.setStyle(TableStyle(styles))
    return table


def _credit_lines(note: CreditNote, money: Currency, width: float) -> Table:
    rows = [[_p("CREDITED", "head"), _p("SERVICE", "head"), _p("SHARE OF CYCLE", "head_right"),
             _p(f"AMOUNT ({money.code})", "head_right")]]
    for line in note.lines:
        last_day = line.service_end - timedelta(microseconds=1)
        rows.append([_p(line.description or line.charge), _p(f"{_date(line.service_start)} – {_date(last_day)}", "muted"),
                     _p(f"{line.quantity * 100:.2f} %", "right"), _p(f"{line.amount:,.{money.minor_units}f}", "right")])
    rows.append([_p(f"Total credited ({money.code})", "total"), "", "", _p(f"{note.total:,.{money.minor_units}f}", "total")])
    table = Table(rows, colWidths=[width * 0.38, width * 0.30, width * 0.14, width * 0.18], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 1), (-1, -2), 0.4, RULE),
        ("SPAN", (0, -1), (2, -1)),
        ("LINEABOVE", (0, -1), (-1, -1), 1.2, ACCENT),
        ("BACKGROUND", (0, -1), (-1, -1), SHADE),
        ("TOPPADDING", (0, -1), (-1, -1), 6),
        ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]))
    return table


def _totals(invoice: Invoice, money: Currency, width: float) -> Table:
    def amount(value: Decimal) -> str:
        return f"{value:,.{money.minor_units}f}"

    rows = [[_p("Subtotal"), _p(amount(invoice.subtotal), "right")]]
    credits = Decimal(0)
    for adjustment in invoice.adjustments:
        if adjustment.kind is AdjustmentKind.CREDIT:
            credits += adjustment.amount
            continue
        rows.append([_p(adjustment.description or adjustment.code or "Discount"), _p(f"-{amount(adjustment.amount)}", "right")])
    rows.append([_p(f"Tax ({invoice.tax_rate * 100:.3f}".rstrip("0").rstrip(".") + " %)"), _p(amount(invoice.tax), "right")])
    if credits:
        rows.append([_p("Total"), _p(amount(invoice.total + credits), "right")])
        rows.append([_p("Prepaid credits applied"), _p(f"-{amount(credits)}", "right")])
    rows.append([_p(f"Total due ({money.code})", "total"), _p(amount(invoice.total), "total")])
    table = Table(rows, colWidths=[width * 0.38, width * 0.18], hAlign="RIGHT")
    table.setStyle(TableStyle([
        ("LINEABOVE", (0, -1), (-1, -1), 1.2, ACCENT),
        ("BACKGROUND", (0, -1), (-1, -1), SHADE),
        ("TOPPADDING", (0, -1), (-1, -1), 6),
        ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]))
    return table


def _footer(branding: Branding, document: str):
    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(doc.leftMargin, 10 * mm, f"{branding.company_name} · {document}")
        canvas.drawRightString(doc.leftMargin + doc.width, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    return draw
