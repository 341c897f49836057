"""Warehouse reads and writes of the invoice run (ClickHouse, through clickhouse-connect).

Reads use FINAL (the latest version of every id). Writes go through :mod:`billing.warehouse.facts`, the
one contract -> rows mapping. Parameters are bound server-side (``{name:Type}``; times as epoch
milliseconds); a list of ids is one ``Array(String)`` parameter, which clickhouse-connect sends in
a form body when it is too long for the URL. A draft that is recomputed has its old lines, adjustments and spans
deleted first (a shorter draft must not keep stale rows); finalized invoices are never rewritten
except as new status versions with the same lines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import orjson
from clickhouse_connect.driver.client import Client

from billing.core.contracts import (
    Adjustment,
    AdjustmentKind,
    BreakdownStep,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceStatus,
    LineItem,
    LineKind,
)
from billing.core.invoicing.compose import BillingCustomer
from billing.core.invoicing.grants import Applied, GrantRecord, Held, Revocation, coupon_grant_id, holdings
from billing.core.invoicing.timeline import PlanSpan, SubscriptionChange
from billing.core.invoicing.usage import HourStats
from billing.core.pricing.money import MINOR_UNITS, currency
from billing.core.pricing.proration import Period
from billing.invoicing.pdf import BillTo
from billing.warehouse import facts

MS = "fromUnixTimestamp64Milli({{{}:Int64}}, 'UTC')"
"""SQL of a time parameter passed as epoch milliseconds: ``MS.format('start')``."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_COLUMNS = ("invoice_id", "span_no", "customer_id", "subscription_id", "product_id", "plan_id", "currency",
                "period_start", "span_start", "span_end", "computed_at", "billing_time")


class InvoiceHead(NamedTuple):
    """The identity and status of a stored invoice (latest version)."""

    id: str
    customer_id: str
    period_start: datetime
    period_end: datetime
    status: InvoiceStatus


class LineRow(NamedTuple):
    """A stored invoice line as the warehouse holds it (no contract validation: fast to compare)."""

    kind: str
    charge: str
    meter: str | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    breakdown: str


_HEAD = ("subscription_id", "period_start", "period_end", "currency", "subtotal", "discount_total", "tax_rate", "tax", "total")
_ADJUSTMENT = ("adjustment_id", "kind", "code", "description", "percent_off", "amount")


_HEAD_AT = tuple(facts.COLUMNS["invoices"].index(name) for name in _HEAD)
_LINE_AT = tuple(facts.COLUMNS["invoice_lines"].index(name) for name in LineRow._fields)
_ADJUSTMENT_AT = tuple(facts.COLUMNS["invoice_adjustments"].index(name) for name in _ADJUSTMENT)


def content_key(rows: facts.Rows) -> tuple:
    """What the invoice in ``rows`` (:func:`billing.warehouse.facts.invoice_rows`) bills, as comparable values
    (times and status aside): equal keys mean a re-run would write the same lines and amounts."""
    return (tuple(rows["invoices"][0][i] for i in _HEAD_AT),
            tuple(LineRow(*(row[i] for i in _LINE_AT)) for row in rows["invoice_lines"]),
            tuple(sorted(tuple(row[i] for i in _ADJUSTMENT_AT) for row in rows["invoice_adjustments"])))


@dataclass(frozen=True, slots=True)
class SpanRow:
    """One span to record: the invoice it belongs to, its number, and the catalog plan priced."""

    invoice_id: str
    span_no: int
    customer_id: str
    span: PlanSpan
    plan_id: str
    currency: str
    period_start: datetime


class Store:
    """The invoicing tables of one database."""

    def __init__(self, ch: Client, database: str):
        self.ch = ch
        self.db = database

    # ---------------------------------------------------------------------------- reads

    def customers(self, ids: Sequence[str] | None = None) -> dict[str, BillingCustomer]:
        """Latest state of the customers (all, or ``ids``)."""
        where, params = ("WHERE customer_id IN {ids:Array(String)}", {"ids": list(ids)}) if ids is not None else ("", {})
        rows = self.ch.query(
            f"SELECT customer_id, currency, country, tax_region, tax_exempt FROM {self.db}.customers FINAL {where}",
            parameters=params,
        ).result_rows
        return {r[0]: BillingCustomer(r[0], r[1], r[2] or None, r[3], bool(r[4])) for r in rows}

    def party(self, customer_id: str) -> BillTo | None:
        """The bill-to block of a customer for PDFs (None when unknown)."""
        rows = self.ch.query(
            f"SELECT company_name, email, country, tax_region FROM {self.db}.customers FINAL WHERE customer_id = {{c:String}}",
            parameters={"c": customer_id},
        ).result_rows
        if not rows:
            return None
        name, email, country, tax_region = rows[0]
        return BillTo(name, customer_id, email, (f"Country: {country}" + (f", {tax_region}" if tax_region else ""),))

    def subscription_changes(self, before: datetime, customer: str | None = None) -> dict[str, list[SubscriptionChange]]:
        """Every subscription event effective before ``before``, per customer."""
        where = "AND customer_id = {customer:String}" if customer else ""
        rows = self.ch.query(
            f"SELECT customer_id, subscription_id, sequence, plan_id, status, start_time, end_time, effective_time, "
            "billing_interval, billing_time "
            f"FROM {self.db}.subscription_events FINAL WHERE effective_time < {MS.format('before')} {where}",
            parameters={"before": epoch_ms(before), "customer": customer},
        ).result_rows
        changes: dict[str, list[SubscriptionChange]] = defaultdict(list)
        for customer_id, *fields in rows:
            changes[customer_id].append(SubscriptionChange(*fields))
        return changes

    def statuses(self, period: Period) -> dict[str, tuple[InvoiceStatus, str | None]]:
        """Current status of every invoice of ``period``, with the invoice that re-bills it (if any)."""
        rows = self.ch.query(
            f"SELECT invoice_id, status, replaced_by FROM {self.db}.invoices FINAL WHERE period_start = {MS.format('start')}",
            parameters={"start": epoch_ms(period.start)},
        ).result_rows
        return {r[0]: (InvoiceStatus(r[1]), r[2]) for r in rows}

    def last_number(self, table: str, series: str) -> int:
        """The highest sequence number of ``series`` (``<series>-<n>``) ever recorded in ``table``, 0 if none.

        Every version counts (no FINAL): a number once recorded is never reused."""
        prefix = f"{series}-"
        rows = self.ch.query(
            f"SELECT max(toUInt64OrZero(substring(number, {{at:UInt32}}))) FROM {self.db}.{table} "
            "WHERE startsWith(number, {prefix:String})",
            parameters={"prefix": prefix, "at": len(prefix) + 1},
        ).result_rows
        return int(rows[0][0] or 0) if rows else 0

    def credit_notes(self, *, customer: str | None = None, ids: Sequence[str] | None = None,
                     period: Period | None = None) -> list[CreditNote]:
        """Credit notes (latest version) matching every filter given, by customer and number."""
        conditions, params = [], {}
        if customer is not None:
            conditions.append("customer_id = {customer:String}")
            params["customer"] = customer
        if ids is not None:
            conditions.append("credit_note_id IN {ids:Array(String)}")
            params["ids"] = list(ids)
        if period is not None:
            conditions.append(f"period_start = {MS.format('start')}")
            params["start"] = epoch_ms(period.start)
        heads = self.ch.query(
            f"SELECT {', '.join(facts.COLUMNS['credit_notes'])} FROM {self.db}.credit_notes FINAL "
            f"{'WHERE ' + ' AND '.join(conditions) if conditions else ''} ORDER BY customer_id, number",
            parameters=params,
        ).result_rows
        if not heads:
            return []
        lines: dict[str, list[CreditNoteLine]] = defaultdict(list)
        for note_id, code, charge, description, quantity, amount, start, end in self.ch.query(
            f"SELECT credit_note_id, currency, charge, description, quantity, amount, service_start, service_end "
            f"FROM {self.db}.credit_note_lines FINAL WHERE credit_note_id IN {{ids:Array(String)}} ORDER BY credit_note_id, line_no",
            parameters={"ids": [h[0] for h in heads]},
        ).result_rows:
            lines[note_id].append(CreditNoteLine(charge=charge, description=description, quantity=_trim(quantity),
                                                 amount=_money(amount, code), service_start=start, service_end=end))
        return [CreditNote(id=i, number=number, customer_id=c, invoice_id=inv, period_start=start, period_end=end,
                           currency=code, reason=reason, lines=tuple(lines[i]), total=_money(total, code),
                           issued_at=issued, event_time=at)
                for i, number, c, inv, start, end, code, reason, total, issued, at in heads]

    def span_usage(self, spans_sql: str, low: datetime, high: datetime, params: dict) -> dict[tuple[str, int], dict[str, HourStats]]:
        """Hour statistics per (invoice id, span number) and meter, for the spans selected by ``spans_sql``.

        Decimals travel as ClickHouse's shortest text (``52831``, not ``52831.000000000``), which is
        also how invoice lines show them.

        ``spans_sql`` yields ``customer_id, invoice_id, span_no, span_start, span_end``; ``low`` and
        ``high`` bound the hour windows read (the earliest span start and the latest span end).
        """
        rows = self.ch.query(
            f"""
            SELECT s.invoice_id, s.span_no, r.meter,
                   toString(sum(r.value)), toString(max(r.value)), toString(argMax(r.value, r.window_start))
            FROM (
                SELECT customer_id, meter, window_start, value FROM {self.db}.usage_rollups FINAL
                WHERE window_seconds = 3600 AND window_start >= {MS.format('low')} AND window_start < {MS.format('high')}
            ) AS r
            INNER JOIN ({spans_sql}) AS s ON r.customer_id = s.customer_id
            WHERE r.window_start >= s.span_start AND r.window_start < s.span_end
            GROUP BY s.invoice_id, s.span_no, r.meter
            """,
            parameters={**params, "low": epoch_ms(low), "high": epoch_ms(high)},
        ).result_rows
        usage: dict[tuple[str, int], dict[str, HourStats]] = defaultdict(dict)
        for invoice_id, span_no, meter, total, peak, latest in rows:
            usage[(invoice_id, span_no)][meter] = HourStats(Decimal(total), Decimal(peak), Decimal(latest))
        return usage

    def recorded_span_usage(self, periods: Period) -> dict[tuple[str, int], dict[str, HourStats]]:
        """Hour statistics of the spans recorded for the invoices whose period starts within ``periods``."""
        return self.span_usage(*self._recorded(periods))

    def span_transactions(self, spans_sql: str, low: datetime, high: datetime, params: dict,
                          meters: Iterable[str]) -> dict[tuple[str, int], dict[str, list[Decimal]]]:
        """Amounts of the single events of ``meters`` per (invoice id, span number) and meter, in event
        order (time, then id), for the spans selected by ``spans_sql`` (as :meth:`span_usage`); an event
        belongs to the span its hour starts in, as its hour window does."""
        meters = sorted(meters)
        if not meters:
            return {}
        rows = self.ch.query(
            f"""
            SELECT s.invoice_id, s.span_no, e.meter,
                   arrayMap(t -> toString(t.3), arraySort(groupArray((e.event_time, e.event_id, e.quantity))))
            FROM (
                SELECT customer_id, meter, event_time, event_id, quantity FROM {self.db}.usage_events FINAL
                WHERE meter IN {{meters:Array(String)}}
                  AND event_time >= {MS.format('low')} AND event_time < {MS.format('high')}
            ) AS e
            INNER JOIN ({spans_sql}) AS s ON e.customer_id = s.customer_id
            WHERE toStartOfHour(e.event_time) >= s.span_start AND toStartOfHour(e.event_time) < s.span_end
            GROUP BY s.invoice_id, s.span_no, e.meter
            """,
            parameters={**params, "meters": meters, "low": epoch_ms(low), "high": epoch_ms(high)},
        ).result_rows
        found: dict[tuple[str, int], dict[str, list[Decimal]]] = defaultdict(dict)
        for invoice_id, span_no, meter, amounts in rows:
            found[(invoice_id, span_no)][meter] = [Decimal(amount) for amount in amounts]
        return found

    def recorded_span_transactions(self, periods: Period, meters: Iterable[str]) -> dict[tuple[str, int], dict[str, list[Decimal]]]:
        """:meth:`span_transactions` of the spans recorded for the invoices whose period starts within ``periods``."""
        return self.span_transactions(*self._recorded(periods), meters)

    def _recorded(self, periods: Period) -> tuple[str, datetime, datetime, dict]:
        """Spans query, bounds and parameters of the spans recorded for the invoices whose period starts within ``periods``."""
        spans = (f"SELECT customer_id, invoice_id, span_no, span_start, span_end FROM {self.db}.invoice_spans FINAL "
                 f"WHERE period_start >= {MS.format('since')} AND period_start < {MS.format('until')}")
        return spans, periods.start, periods.end, {"since": epoch_ms(periods.start), "until": epoch_ms(periods.end)}

    def events(self, customer_id: str, period: Period, meters: Iterable[str]) -> list[tuple[str, datetime, Decimal]]:
        """``(meter, event_time, amount)`` of one customer's single events of ``meters`` in ``period``, in event order."""
        meters = sorted(meters)
        if not meters:
            return []
        rows = self.ch.query(
            f"SELECT meter, event_time, quantity FROM {self.db}.usage_events FINAL WHERE customer_id = {{c:String}} "
            f"AND meter IN {{meters:Array(String)}} AND event_time >= {MS.format('low')} AND event_time < {MS.format('high')} "
            "ORDER BY event_time, event_id",
            parameters={"c": customer_id, "meters": meters, "low": epoch_ms(period.start), "high": epoch_ms(period.end)},
        ).result_rows
        return [(meter, moment, _trim(amount)) for meter, moment, amount in rows]

    def recorded_spans(self, periods: Period) -> dict[str, list[tuple[int, PlanSpan, str]]]:
        """``invoice id -> [(span number, span, catalog plan id), ...]`` recorded for the invoices whose
        period starts within ``periods``."""
        rows = self.ch.query(
            f"SELECT invoice_id, span_no, subscription_id, product_id, span_start, span_end, plan_id, billing_time "
            f"FROM {self.db}.invoice_spans FINAL WHERE period_start >= {MS.format('since')} "
            f"AND period_start < {MS.format('until')} ORDER BY invoice_id, span_no",
            parameters={"since": epoch_ms(periods.start), "until": epoch_ms(periods.end)},
        ).result_rows
        out: dict[str, list[tuple[int, PlanSpan, str]]] = defaultdict(list)
        for invoice_id, number, subscription_id, product_id, start, end, plan_id, billing_time in rows:
            out[invoice_id].append((number, PlanSpan(subscription_id, product_id, start, end, billing_time=billing_time), plan_id))
        return out

    def hourly(self, customer_id: str, period: Period) -> list[tuple[str, datetime, Decimal]]:
        """``(meter, window_start, value)`` of one customer's hour windows in ``period``."""
        rows = self.ch.query(
            f"SELECT meter, window_start, value FROM {self.db}.usage_rollups FINAL WHERE customer_id = {{c:String}} "
            f"AND window_seconds = 3600 AND window_start >= {MS.format('low')} AND window_start < {MS.format('high')}",
            parameters={"c": customer_id, "low": epoch_ms(period.start), "high": epoch_ms(period.end)},
        ).result_rows
        return [(meter, start, _trim(value)) for meter, start, value in rows]

    def heads(self, since: datetime) -> list[InvoiceHead]:
        """Identity and status of every invoice whose period starts at or after ``since``."""
        rows = self.ch.query(
            f"SELECT invoice_id, customer_id, period_start, period_end, status FROM {self.db}.invoices FINAL "
            f"WHERE period_start >= {MS.format('since')}", parameters={"since": epoch_ms(since)},
        ).result_rows
        return [InvoiceHead(i, c, start, end, InvoiceStatus(status)) for i, c, start, end, status in rows]

    def line_rows(self, since: datetime, until: datetime | None = None) -> dict[str, list[LineRow]]:
        """Stored lines of the invoices whose period starts in ``[since, until)``, per invoice, in order."""
        bound = f"AND period_start < {MS.format('until')}" if until is not None else ""
        rows = self.ch.query(
            f"SELECT invoice_id, {', '.join(LineRow._fields)} FROM {self.db}.invoice_lines FINAL "
            f"WHERE period_start >= {MS.format('since')} {bound} ORDER BY invoice_id, line_no",
            parameters={"since": epoch_ms(since), "until": epoch_ms(until) if until is not None else None},
        ).result_rows
        out: dict[str, list[LineRow]] = defaultdict(list)
        for invoice_id, *fields in rows:
            out[invoice_id].append(LineRow(*fields))
        return out

    def draft_contents(self, period: Period) -> dict[str, tuple]:
        """:func:`content_key` of every draft of ``period``, read straight from the rows."""
        start = {"start": epoch_ms(period.start)}
        heads = self.ch.query(
            f"SELECT invoice_id, status, {', '.join(_HEAD)} FROM {self.db}.invoices FINAL "
            f"WHERE period_start = {MS.format('start')}", parameters=start,
        ).result_rows
        drafts = {row[0]: tuple(row[2:]) for row in heads if row[1] == InvoiceStatus.DRAFT.value}
        if not drafts:
            return {}
        lines = self.line_rows(period.start, period.end)
        adjustments: dict[str, list[tuple]] = defaultdict(list)
        for invoice_id, *fields in self.ch.query(
            f"SELECT invoice_id, {', '.join(_ADJUSTMENT)} FROM {self.db}.invoice_adjustments FINAL "
            f"WHERE period_start = {MS.format('start')}", parameters=start,
        ).result_rows:
            adjustments[invoice_id].append(tuple(fields))
        return {i: (head, tuple(lines.get(i, ())), tuple(sorted(adjustments.get(i, ())))) for i, head in drafts.items()}

    def invoices(self, *, ids: Sequence[str] | None = None, customer: str | None = None,
                 period: Period | None = None, status: InvoiceStatus | None = None,
                 since: datetime | None = None) -> list[Invoice]:
        """Invoices (latest version) matching every filter given, ordered by customer and period."""
        conditions, params = [], {}
        if customer is not None:
            conditions.append("customer_id = {customer:String}")
            params["customer"] = customer
        if period is not None:
            conditions.append(f"period_start = {MS.format('start')}")
            params["start"] = epoch_ms(period.start)
        if since is not None:
            conditions.append(f"period_start >= {MS.format('since')}")
            params["since"] = epoch_ms(since)
        if ids is not None:
            conditions.append("invoice_id IN {ids:Array(String)}")
            params["ids"] = list(ids)
        query = (f"SELECT {', '.join(facts.COLUMNS['invoices'])} FROM {self.db}.invoices FINAL "
                 f"{'WHERE ' + ' AND '.join(conditions) if conditions else ''} "
                 "ORDER BY customer_id, period_start, invoice_id")
        heads = self.ch.query(query, parameters=params).result_rows
        if status is not None:
            heads = [h for h in heads if h[11] == status.value]
        found = [h[0] for h in heads]
        items = self._lines(found) if found else {}
        adjustments = self._adjustments(found) if found else {}
        return [_invoice(h, items.get(h[0], ()), adjustments.get(h[0], ())) for h in heads]

    def _lines(self, ids: list[str]) -> dict[str, list[LineItem]]:
        out: dict[str, list[LineItem]] = defaultdict(list)
        rows = self.ch.query(
            f"SELECT invoice_id, currency, kind, charge, meter, description, quantity, unit_price, amount, breakdown, "
            f"service_start, service_end FROM {self.db}.invoice_lines FINAL WHERE invoice_id IN {{ids:Array(String)}} "
            "ORDER BY invoice_id, line_no",
            parameters={"ids": ids},
        ).result_rows
        for invoice_id, code, kind, charge, meter, description, quantity, unit_price, amount, breakdown, start, end in rows:
            out[invoice_id].append(LineItem(
                kind=LineKind(kind), charge=charge, meter=meter, description=description, quantity=_trim(quantity),
                unit_price=_trim(unit_price), amount=_money(amount, code),
                breakdown=tuple(BreakdownStep.model_validate(step) for step in orjson.loads(breakdown)),
                service_start=start, service_end=end,
            ))
        return out

    def _adjustments(self, ids: list[str]) -> dict[str, list[Adjustment]]:
        out: dict[str, list[Adjustment]] = defaultdict(list)
        rows = self.ch.query(
            f"SELECT invoice_id, currency, adjustment_id, kind, code, description, percent_off, amount "
            f"FROM {self.db}.invoice_adjustments FINAL WHERE invoice_id IN {{ids:Array(String)}} "
            "ORDER BY invoice_id, adjustment_id",
            parameters={"ids": ids},
        ).result_rows
        for invoice_id, code, adjustment_id, kind, coupon, description, percent_off, amount in rows:
            out[invoice_id].append(Adjustment(
                id=adjustment_id, kind=AdjustmentKind(kind), code=coupon, description=description,
                percent_off=None if percent_off is None else _trim(percent_off), amount=_money(amount, code),
            ))
        return out

    def held(self, customer: str | None = None) -> dict[str, Held]:
        """What every customer, or ``customer``, holds (:func:`billing.core.invoicing.grants.holdings`)."""
        return holdings(self.grant_records(customer=customer))

    def grant_records(self, *, customer: str | None = None, grant_id: str | None = None) -> list[GrantRecord]:
        """The coupon redemptions and credits granted, with their revocations: every one, ``customer``'s or ``grant_id``."""
        params = {"c": customer, "g": grant_id}
        where = coupons_where = ""
        if customer is not None:
            where = coupons_where = "WHERE customer_id = {c:String}"
        elif grant_id is not None:
            where = "WHERE grant_id = {g:String}"
            coupons_where = "WHERE grant_id IN ({g:String}, '')"  # empty: recorded before migration 0006, default id
        revoked = {g: Revocation(at, reason) for g, at, reason in self.ch.query(
            f"SELECT grant_id, min(revoked_at), argMin(reason, revoked_at) FROM {self.db}.grant_revocations {where} "
            "GROUP BY grant_id", parameters=params,
        ).result_rows}
        coupons = self.ch.query(
            f"SELECT customer_id, coupon_id, grant_id, redeemed_at FROM {self.db}.customer_coupons FINAL {coupons_where}",
            parameters=params,
        ).result_rows
        credits = self.ch.query(
            f"SELECT customer_id, grant_id, toString(amount), currency, granted_at FROM {self.db}.customer_credits FINAL {where}",
            parameters=params,
        ).result_rows
        records = [GrantRecord(g or coupon_grant_id(c, code), c, AdjustmentKind.COUPON, at, coupon_id=code)
                   for c, code, g, at in coupons]
        records += [GrantRecord(g, c, AdjustmentKind.CREDIT, at, amount=Decimal(amount), currency=code)
                    for c, g, amount, code, at in credits]
        return [replace(r, revocation=revoked.get(r.grant_id)) for r in records if grant_id is None or r.grant_id == grant_id]

    def applied(self, customer_ids: Sequence[str]) -> dict[str, list[Applied]]:
        """Coupon and credit adjustments of the customers' invoices that are not void, per customer."""
        if not customer_ids:
            return {}
        rows = self.ch.query(
            f"SELECT a.customer_id, a.invoice_id, a.period_start, a.kind, a.code, a.currency, a.amount, "
            f"i.status IN ('finalized', 'paid') FROM {self.db}.invoice_adjustments AS a FINAL "
            f"INNER JOIN (SELECT invoice_id, status FROM {self.db}.invoices FINAL "
            "WHERE customer_id IN {ids:Array(String)} AND status != 'void') AS i ON a.invoice_id = i.invoice_id "
            "WHERE a.customer_id IN {ids:Array(String)} AND a.kind IN ('coupon', 'credit')",
            parameters={"ids": list(customer_ids)},
        ).result_rows
        out: dict[str, list[Applied]] = defaultdict(list)
        for customer_id, *fields in rows:
            out[customer_id].append(Applied(*fields[:-1], bool(fields[-1])))
        return out

    # --------------------------------------------------------------------------- writes

    def write_coupon(self, customer_id: str, coupon_id: str, redeemed_at: datetime, grant_id: str = "") -> None:
        """Record that ``customer_id`` redeemed ``coupon_id`` (an empty ``grant_id`` reads as the default id)."""
        self.ch.insert(f"{self.db}.customer_coupons", [[customer_id, coupon_id, redeemed_at, grant_id]],
                       column_names=("customer_id", "coupon_id", "redeemed_at", "grant_id"))

    def write_grant(self, record: GrantRecord) -> None:
        """Record a coupon redemption or a credit grant."""
        if record.kind is AdjustmentKind.COUPON:
            self.write_coupon(record.customer_id, record.coupon_id, record.granted_at, record.grant_id)
        else:
            self.write_credit(record.customer_id, record.grant_id, record.amount, record.currency, record.granted_at)

    def write_revocation(self, record: GrantRecord, reason: str, revoked_at: datetime) -> None:
        """Record that the grant ``record`` is revoked."""
        self.ch.insert(f"{self.db}.grant_revocations",
                       [[record.grant_id, record.customer_id, record.kind.value, reason, revoked_at]],
                       column_names=("grant_id", "customer_id", "kind", "reason", "revoked_at"))

    def write_credit(self, customer_id: str, grant_id: str, amount: Decimal, code: str, granted_at: datetime) -> None:
        """Record a prepaid credit granted to ``customer_id``."""
        self.ch.insert(f"{self.db}.customer_credits", [[customer_id, grant_id, amount, code, granted_at]],
                       column_names=("customer_id", "grant_id", "amount", "currency", "granted_at"))

    def write_spans(self, rows: Iterable[SpanRow], computed_at: datetime) -> None:
        """Record the spans each invoice prices."""
        data = [[r.invoice_id, r.span_no, r.customer_id, r.span.subscription_id, r.span.plan_id, r.plan_id, r.currency,
                 r.period_start, r.span.start, r.span.end, computed_at, r.span.billing_time] for r in rows]
        if data:
            self.ch.insert(f"{self.db}.invoice_spans", data, column_names=SPAN_COLUMNS)

    def forget_lines(self, invoice_ids: Sequence[str]) -> None:
        """Delete the lines and adjustments of drafts about to be rewritten."""
        for table in ("invoice_lines", "invoice_adjustments"):
            self._delete(f"DELETE FROM {self.db}.{table} WHERE invoice_id IN {{ids:Array(String)}}", {"ids": list(invoice_ids)})

    def forget_spans(self, invoice_ids: Sequence[str], before: datetime) -> None:
        """Delete spans of recomputed drafts recorded before ``before`` (by an earlier run)."""
        self._delete(f"DELETE FROM {self.db}.invoice_spans WHERE invoice_id IN {{ids:Array(String)}} "
                     f"AND computed_at < {MS.format('before')}", {"ids": list(invoice_ids), "before": epoch_ms(before)})

    def _delete(self, sql: str, params: dict) -> None:
        """Run a DELETE as a query: unlike ``command``, a query sends parameters too long for the URL in a form body."""
        if params["ids"]:
            self.ch.raw_query(sql, parameters=params)

    def write_invoices(self, invoices: Iterable[Invoice]) -> None:
        """Insert invoices with their lines and adjustments (via :func:`billing.warehouse.facts.invoice_rows`)."""
        self.write_rows(facts.invoice_rows(invoice) for invoice in invoices)

    def write_rows(self, per_invoice: Iterable[facts.Rows]) -> None:
        """Insert rows made by :mod:`billing.warehouse.facts` (of invoices, credit notes, alerts)."""
        rows: facts.Rows = {}
        for one in per_invoice:
            facts.merge(rows, one)
        for table, data in rows.items():
            if data:
                self.ch.insert(f"{self.db}.{table}", data, column_names=facts.COLUMNS[table])


def _invoice(head: tuple, lines: Sequence[LineItem], adjustments: Sequence[Adjustment]) -> Invoice:
    (invoice_id, customer_id, subscription_id, period_start, period_end, code, subtotal, discount_total, tax_rate, tax,
     total, status, issued_at, due_at, paid_at, voided_at, event_time, void_reason, number, replaces, replaced_by) = head
    return Invoice(
        id=invoice_id, customer_id=customer_id, subscription_id=subscription_id, period_start=period_start,
        period_end=period_end, currency=code, line_items=tuple(lines), subtotal=_money(subtotal, code),
        adjustments=tuple(adjustments), discount_total=_money(discount_total, code), tax_rate=_trim(tax_rate),
        tax=_money(tax, code), total=_money(total, code), status=InvoiceStatus(status), issued_at=issued_at,
        due_at=due_at, paid_at=paid_at, voided_at=voided_at, void_reason=void_reason, event_time=event_time,
        number=number, replaces=replaces, replaced_by=replaced_by,
    )


def _money(value: Decimal, code: str) -> Decimal:
    """A stored amount with its currency's decimals (amounts are stored rounded, with 9 decimals)."""
    return currency(code).round(value) if code in MINOR_UNITS else _trim(value)


def _trim(value: Decimal) -> Decimal:
    """``12.500000000 -> 12.5`` without switching to exponent notation."""
    return Decimal(format(value.normalize(), "f"))


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (the warehouse keeps milliseconds), for :data:`MS`."""
    return (moment - EPOCH) // timedelta(milliseconds=1)
