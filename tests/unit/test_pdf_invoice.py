"""Invoice PDFs contain what the customer needs to check and pay; CSV exports are exact."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from pypdf import PdfReader

from billing.core.contracts import CreditNote, CreditNoteLine
from billing.core.pricing import CouponGrant, PlanTerm, TaxProfile, builtin_catalog, month_period, price_invoice
from billing.core.pricing.invoice import to_invoice
from billing.invoicing.export import INVOICE_COLUMNS, write_invoices_csv, write_usage_csv
from billing.invoicing.pdf import BillTo as Party
from billing.invoicing.pdf import Branding, render_credit_note_pdf, render_pdf

FEB = month_period(datetime(2024, 2, 1, tzinfo=UTC))
CATALOG = builtin_catalog()
BRAND = Branding("Müller Metering GmbH", ("Hauptstraße 1", "10115 Berlin"), "rechnung@mueller.example")
GLOBEX = Party("Globex Corporation", "cus_8f3a", "ap@globex.example", ("Country: US",))


def growth_invoice():
    priced = price_invoice(
        FEB,
        [PlanTerm(CATALOG.plan("growth"), FEB, {"api_calls": D(12_345_678), "compute_seconds": D(7201)})],
        bill_to=TaxProfile("US", "NY"),
        coupons=[CouponGrant(CATALOG.coupon("launch20"))],
        credit_balance=D(100),
        tax_rules=CATALOG.tax_rules,
    )
    issued = FEB.end + timedelta(hours=2)
    return to_invoice(priced, invoice_id="INV-2024-02-000123", customer_id="cus_8f3a", issued_at=issued, due_at=issued + timedelta(days=14))


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def test_pdf_shows_parties_dates_lines_tiers_and_totals(tmp_path):
    invoice = growth_invoice()
    # subtotal 2,583.72 (golden test); 20 % off = 516.744 -> 516.74; taxable 2,066.98
    # NY 4 % = 82.6792 -> 82.68; total 2,149.66; 100 credits -> 2,049.66 due
    assert invoice.total == D("2049.66")
    text = pdf_text(render_pdf(invoice, GLOBEX, tmp_path / "invoice.pdf", BRAND))
    for expected in (
        "Müller Metering GmbH", "Hauptstraße 1", "INVOICE", "INV-2024-02-000123", "Globex Corporation", "cus_8f3a",
        "01 Mar 2024", "15 Mar 2024", "01 Feb 2024", "29 Feb 2024", "AMOUNT (USD)",
        "API calls", "tier 2: over 1,000,000 up to 10,000,000", "9,000,000", "0.0002 + 50.00 flat", "2,484.57",
        "3 package(s) of 3,600 units for 7,201 units",
        "2,583.72", "-516.74", "Tax (4 %)", "82.68", "2,149.66", "Prepaid credits applied", "-100.00", "Total due (USD)", "2,049.66",
    ):
        assert expected in text, expected
    metadata = PdfReader(str(tmp_path / "invoice.pdf")).metadata
    assert metadata.title == "Invoice INV-2024-02-000123"


def test_pdf_uses_the_currency_minor_units(tmp_path):
    priced = price_invoice(FEB, [PlanTerm(CATALOG.plan("enterprise_jpy"), FEB, {"api_calls": D(6_000_000), "compute_seconds": D(1234)})],
                           bill_to=TaxProfile("JP"), tax_rules=CATALOG.tax_rules)
    invoice = to_invoice(priced, invoice_id="INV-JP-1", customer_id="cus_jp", issued_at=FEB.end, due_at=FEB.end)
    text = pdf_text(render_pdf(invoice, Party("Kabushiki Kaisha", "cus_jp"), tmp_path / "jp.pdf", BRAND))
    # 315,005 + 10 % tax 31,501 = 346,506 JPY, printed without decimals
    assert "346,506" in text and "346,506.00" not in text and "Total due (JPY)" in text


def test_credit_note_pdf_shows_what_is_credited_against_which_invoice(tmp_path):
    year = (datetime(2026, 6, 15, tzinfo=UTC), datetime(2027, 6, 15, tzinfo=UTC))
    line = CreditNoteLine(charge="growth_yearly.platform_fee", quantity=D("0.871232877"), amount=D("862.52"),
                          description="Unused Growth platform fee (yearly) of Growth (yearly) (2026-06-15 to 2027-06-15): "
                                      "318.00 of 365.00 days", service_start=year[0], service_end=year[1])
    issued = datetime(2026, 9, 1, 2, tzinfo=UTC)
    note = CreditNote(id="cn-inv-cus_8f3a-202606-202608", number="INV-CN-000001", customer_id="cus_8f3a",
                      invoice_id="inv-cus_8f3a-202606", period_start=datetime(2026, 8, 1, tzinfo=UTC),
                      period_end=datetime(2026, 9, 1, tzinfo=UTC), currency="USD", reason="unused part of fees paid in advance",
                      lines=(line,), total=D("862.52"), issued_at=issued, event_time=issued)
    path = render_credit_note_pdf(note, GLOBEX, tmp_path / "credit-note.pdf", BRAND)
    text = pdf_text(path)
    for expected in ("Müller Metering GmbH", "CREDIT NOTE", "INV-CN-000001", "inv-cus_8f3a-202606", "Globex Corporation",
                     "01 Sep 2026", "15 Jun 2026", "14 Jun 2027", "87.12 %", "862.52", "Total credited (USD)",
                     "unused part of fees paid in advance"):
        assert expected in text, expected
    assert PdfReader(str(path)).metadata.title == "Credit note cn-inv-cus_8f3a-202606-202608"


def test_invoice_csv_has_one_exact_row_per_line_item():
    invoice = growth_invoice()
    out = io.StringIO()
    assert write_invoices_csv([invoice, invoice], out) == 6
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == INVOICE_COLUMNS
    api = rows[1]
    assert (api["charge"], api["kind"], api["quantity"], api["amount"], api["total"]) == (
        "growth.api_calls", "usage", "12345678", "2484.57", "2049.66")
    assert rows[0]["period_start"] == "2024-02-01T00:00:00Z"
    assert sum(D(row["amount"]) for row in rows[:3]) == D(rows[0]["subtotal"])


def test_usage_csv_lists_each_meter_of_each_customer():
    out = io.StringIO()
    count = write_usage_csv([("cus_1", FEB.start, FEB.end, {"bandwidth_gb": D("1.50"), "api_calls": D("1E+6")})], out)
    assert count == 2
    assert out.getvalue().splitlines() == [
        "customer_id,period_start,period_end,meter,quantity",
        "cus_1,2024-02-01T00:00:00Z,2024-03-01T00:00:00Z,api_calls,1000000",
        "cus_1,2024-02-01T00:00:00Z,2024-03-01T00:00:00Z,bandwidth_gb,1.50",
    ]
