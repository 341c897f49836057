"""A customer usage report read from the warehouse: hourly rollups, the priced period, invoices and alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from billing.core.errors import ConfigError
from billing.core.invoicing.errors import NoSubscription, UnknownCustomer
from billing.core.invoicing.periods import parse_period
from billing.core.reports.usage import HourRow, ReportAlert, UsageReport, meter_usage
from billing.invoicing.run import Invoicing
from billing.invoicing.store import MS, epoch_ms

Progress = Callable[[int], None]
"""``progress(percent)``: called as the report is gathered."""


def customer_usage(invoicing: Invoicing, customer_id: str, period_text: str, now: datetime,
                   progress: Progress = lambda _percent: None) -> UsageReport:
    """The usage report of ``customer_id`` for the month ``period_text`` as of ``now``."""
    store, period = invoicing.store, parse_period(period_text)
    party = store.party(customer_id)
    if party is None:
        raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse")
    rows: list[HourRow] = store.ch.query(
        f"SELECT meter, window_start, group_key, value FROM {store.db}.usage_rollups FINAL "
        f"WHERE customer_id = {{c:String}} AND window_seconds = 3600 "
        f"AND window_start >= {MS.format('low')} AND window_start < {MS.format('high')}",
        parameters={"c": customer_id, "low": epoch_ms(period.start), "high": epoch_ms(period.end)},
    ).result_rows
    meters = meter_usage(invoicing.meters, rows, period)
    progress(40)
    try:
        preview = invoicing.preview(customer_id, now=now, period=period)
        cost, note = preview.invoice, f"accrued to {preview.until:%Y-%m-%d %H:%M} UTC"
    except NoSubscription as exc:
        cost, note = None, str(exc)
    except ConfigError as exc:
        raise ConfigError(f"cannot price customer {customer_id}: {exc}") from None
    progress(70)
    invoices = store.invoices(customer=customer_id, period=period)
    alerts = store.ch.query(
        f"SELECT detected_at, type, rule, meter, value FROM {store.db}.alerts FINAL WHERE customer_id = {{c:String}} "
        f"AND period_start >= {MS.format('low')} AND period_start < {MS.format('high')} ORDER BY detected_at, alert_id",
        parameters={"c": customer_id, "low": epoch_ms(period.start), "high": epoch_ms(period.end)},
    ).result_rows
    progress(80)
    return UsageReport(customer_id, party.name, period, now, meters, cost, note, tuple(invoices),
                       tuple(ReportAlert(*row) for row in alerts))
