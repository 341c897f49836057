"""Recognized revenue by service days, on a hand-built yearly invoice in a copy of the simulated
warehouse: a 1,200.00 USD yearly fee in advance for 1 July 2026 to 1 July 2027 (365 days) with June's
usage on the same invoice, and a credit note for its last 91 days.

The rounding rule checked: what an invoice recognized up to a month's end is its exact schedule to
date rounded half away from zero to the minor unit, once per invoice; a month recognizes that minus the
same at its start, so the months add up to the booked amount minus credit notes exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from billing.analytics.dbt_project import run_dbt
from billing.core.contracts import CreditNote, CreditNoteLine, Invoice, InvoiceStatus, LineItem, LineKind
from billing.warehouse import facts
from billing.warehouse.client import client
from tests.integration.marts_data import BuiltMarts, copy_database, drop_databases

YEAR_START, YEAR_END = datetime(2026, 7, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC)
ISSUED = datetime(2026, 7, 1, 2, tzinfo=UTC)
FEE, USAGE, CREDIT = Decimal("1200.00"), Decimal("12.34"), Decimal("299.18")  # 1,200 x 91 / 365 = 299.178...
CENT = Decimal("0.01")


def invoice(customer_id: str, invoice_id: str, status: InvoiceStatus) -> Invoice:
    lines = (
        LineItem(kind=LineKind.USAGE, charge="business.api_calls", meter="api_calls", description="June API calls",
                 quantity=Decimal(12340), unit_price=Decimal("0.001"), amount=USAGE,
                 service_start=datetime(2026, 6, 1, tzinfo=UTC), service_end=YEAR_START),
        LineItem(kind=LineKind.SUBSCRIPTION, charge="business_y.fee", description="Yearly fee (in advance)",
                 quantity=Decimal(1), unit_price=FEE, amount=FEE, service_start=YEAR_START, service_end=YEAR_END),
    )
    void = status is InvoiceStatus.VOID
    return Invoice(id=invoice_id, customer_id=customer_id, period_start=datetime(2026, 6, 1, tzinfo=UTC),
                   period_end=YEAR_START, currency="USD", line_items=lines, subtotal=FEE + USAGE, total=FEE + USAGE,
                   status=status, issued_at=ISSUED, due_at=datetime(2026, 7, 31, tzinfo=UTC), event_time=ISSUED,
                   number=f"INV-{invoice_id}", voided_at=ISSUED if void else None, void_reason="test" if void else None)


def credit_note(customer_id: str, invoice_id: str) -> CreditNote:
    issued = datetime(2027, 3, 20, tzinfo=UTC)
    line = CreditNoteLine(charge="business_y.fee", description="Unused yearly fee: 91.00 of 365.00 days",
                          quantity=Decimal("0.249315068"), amount=CREDIT, service_start=YEAR_START, service_end=YEAR_END)
    return CreditNote(id=f"cn-{invoice_id}", number=f"CN-{invoice_id}", customer_id=customer_id, invoice_id=invoice_id,
                      period_start=datetime(2027, 3, 1, tzinfo=UTC), period_end=datetime(2027, 4, 1, tzinfo=UTC),
                      currency="USD", reason="canceled", lines=(line,), total=CREDIT, issued_at=issued, event_time=issued)


# month -> revenue recognized (1,200 x days to date / 365, rounded, minus the same a month earlier)
RECOGNIZED = {
    date(2026, 6, 1): USAGE,  # usage in its usage month, before the invoice was booked
    date(2026, 7, 1): Decimal("101.92"), date(2026, 8, 1): Decimal("101.92"), date(2026, 9, 1): Decimal("98.63"),
    date(2026, 10, 1): Decimal("101.91"), date(2026, 11, 1): Decimal("98.63"), date(2026, 12, 1): Decimal("101.92"),
    date(2027, 1, 1): Decimal("101.92"), date(2027, 2, 1): Decimal("92.05"), date(2027, 3, 1): Decimal("101.92"),
    date(2027, 4, 1): Decimal(0), date(2027, 5, 1): Decimal(0), date(2027, 6, 1): Decimal(0),  # credited
}


def test_a_yearly_fee_is_recognized_by_service_days_less_its_credit_note(marts: BuiltMarts) -> None:
    suffix = uuid.uuid4().hex[:8]
    copy = marts.settings.model_copy(update={"clickhouse_database": f"rev_raw_{suffix}",
                                             "clickhouse_marts_database": f"rev_{suffix}"})
    customer = next(c.id for c in marts.data.customers.values() if c.currency == "USD")
    booked_id, void_id = f"rev-{suffix}", f"rev-void-{suffix}"
    try:
        copy_database(marts.settings, marts.settings.clickhouse_database, copy.clickhouse_database)
        raw = client(copy, database=copy.clickhouse_database)
        rows = facts.merge(facts.merge(facts.rows_for(invoice(customer, booked_id, InvoiceStatus.FINALIZED)),
                                       facts.rows_for(invoice(customer, void_id, InvoiceStatus.VOID))),
                           facts.rows_for(credit_note(customer, booked_id)))
        for table, table_rows in rows.items():
            raw.insert(table, table_rows, column_names=facts.COLUMNS[table])
        result = run_dbt(copy, ["build", "--select", "+fct_revenue_recognition", "--indirect-selection", "cautious"],
                         capture=True)
        assert result.returncode == 0, result.stdout[-3000:]

        marts_ch = client(copy, database=copy.clickhouse_marts_database)
        found = marts_ch.query(
            "SELECT month_start, recognized_amount, deferred_amount, unbilled_amount, booked_amount, credited_amount "
            "FROM fct_revenue_recognition WHERE invoice_id = {i:String} ORDER BY month_start",
            parameters={"i": booked_id}).result_rows
        assert {row[0]: row[1] for row in found} == RECOGNIZED
        assert sum(RECOGNIZED.values()) == FEE + USAGE - CREDIT
        by_month = {row[0]: row[2:] for row in found}
        # deferred = booked - credited - recognized to date, from the booked month (July) on
        assert by_month[date(2026, 6, 1)] == (0, USAGE, 0, 0)
        assert by_month[date(2026, 7, 1)] == (FEE + USAGE - CREDIT - USAGE - Decimal("101.92"), 0, FEE + USAGE, 0)
        assert by_month[date(2027, 2, 1)][0] == Decimal("101.92")
        assert by_month[date(2027, 3, 1)] == (0, 0, 0, CREDIT)
        assert all(row[2] == 0 for row in found if row[0] >= date(2027, 3, 1))
        assert marts_ch.query("SELECT count() FROM fct_revenue_recognition WHERE invoice_id = {i:String}",
                              parameters={"i": void_id}).result_rows == [(0,)]
        (unrounded,), = marts_ch.query(
            "SELECT sum(exact_amount) FROM int_revenue_schedule WHERE invoice_id = {i:String} AND "
            "month_start = '2027-02-01'", parameters={"i": booked_id}).result_rows
        assert abs(unrounded - FEE * 28 / 365) < CENT
    finally:
        drop_databases(marts.settings, copy.clickhouse_database, copy.clickhouse_marts_database)
