"""The finance summary of a month read from the marts through the `billing report` questions
(``billing_seasonality``, ``mrr_movements``, ``outstanding_payments``): one definition per number."""

from __future__ import annotations

from datetime import datetime

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from billing.analytics import report
from billing.core.errors import ConfigError
from billing.core.invoicing.periods import parse_period
from billing.core.reports.finance import FinanceSummary, Row, summarize
from billing.reports.content import Progress
from billing.settings import Settings

QUESTIONS = ("billing_seasonality", "mrr_movements", "outstanding_payments")


def _rows(answer: report.Answer) -> list[Row]:
    return [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]


def finance_summary(settings: Settings, period_text: str, now: datetime, progress: Progress = lambda _percent: None) -> FinanceSummary:
    """The finance summary of the month ``period_text`` as the marts of ``settings`` answer it."""
    period = parse_period(period_text)
    known = report.questions()
    month = {"month": period.start.date()}
    marts = settings.clickhouse_marts_database
    try:
        seasonality = _rows(report.answer(settings, known["billing_seasonality"], "month_start = {month:Date}", month))
        progress(25)
        movements = _rows(report.answer(settings, known["mrr_movements"], "month_start = {month:Date}", month))
        progress(50)
        of_month = _rows(report.answer(
            settings, known["outstanding_payments"],
            f"invoice_id IN (SELECT invoice_id FROM {marts}.dim_customer_invoices WHERE booked_month = {{month:Date}})", month))
        outstanding = _rows(report.answer(settings, known["outstanding_payments"]))
    except OperationalError:
        raise
    except DatabaseError as exc:
        raise ConfigError(f"the marts database {marts} cannot answer the finance questions (build it with "
                          f"`billing dbt build`): {str(exc).splitlines()[0]}") from None
    progress(80)
    return summarize(period, now, seasonality[0] if seasonality else None, movements[0] if movements else None,
                     of_month, outstanding)
