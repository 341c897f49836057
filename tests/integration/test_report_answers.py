"""Every question `billing report` answers, recomputed independently in Python from the records
the simulator sent, must match the report views row for row (money exactly, to the cent)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from billing.analytics import report
from billing.analytics.dbt_project import PROJECT_DIR, plan_rows
from billing.core.meters import active_meters
from billing.core.pricing.catalog import builtin_catalog
from producers.manifest import Manifest
from tests.integration.marts_data import BuiltMarts, SimulatedData, billing_cli

NANO, CENT = Decimal("1e-9"), Decimal("0.01")
ZERO = Decimal(0)


def ch_div(a: Decimal, b) -> Decimal:
    """ClickHouse Decimal(38, 9) division: truncated to 9 places."""
    return (Decimal(a) / Decimal(b)).quantize(NANO, ROUND_DOWN)


def ch_round(value: Decimal) -> Decimal:
    """ClickHouse round(decimal, 2): half away from zero."""
    return value.quantize(CENT, ROUND_HALF_UP)


RATES = {row["currency"]: Decimal(row["units_per_usd"])
         for row in csv.DictReader((PROJECT_DIR / "seeds" / "currency_rates.csv").open())}
MINOR_UNITS = {row["currency"]: int(row["minor_units"])
               for row in csv.DictReader((PROJECT_DIR / "seeds" / "currency_rates.csv").open())}


def usd(amount: Decimal, currency: str) -> Decimal:
    return ch_round(ch_div(amount, RATES[currency]))


@dataclass
class Attempt:
    number: int
    initiated_at: datetime
    outcome: str
    failure_reason: str | None
    seconds: int | None


@dataclass
class Tx:
    id: str
    invoice_id: str
    customer_id: str
    method: str
    currency: str
    amount: Decimal
    status: str
    succeeded: bool
    succeeded_at: datetime | None
    attempts: list[Attempt]
    failures: int
    refunded: Decimal
    disputed: bool
    path: str
    initiated_at: datetime
    country: str
    region: str
    paid_late: bool

    @property
    def net(self) -> Decimal:
        return (self.amount if self.succeeded else ZERO) - self.refunded

    @property
    def net_usd(self) -> Decimal:
        return usd(self.net, self.currency)


def transactions(data: SimulatedData) -> list[Tx]:
    result = []
    for tx_id, events in data.payments_by_transaction().items():
        first = events[0]
        customer = data.customers[first.customer_id]
        by_attempt = defaultdict(list)
        for event in events:
            by_attempt[event.attempt].append(event)
        attempts = []
        for number, group in sorted(by_attempt.items()):
            statuses = {e.status.value for e in group}
            outcome = "succeeded" if "succeeded" in statuses else "failed" if "failed" in statuses else "pending"
            settled = next((e for e in group if e.status.value == outcome), None)
            attempts.append(Attempt(
                number, min(e.initiated_at for e in group), outcome,
                next((e.failure_reason.value for e in group if e.failure_reason), None),
                int((settled.completed_at - settled.initiated_at).total_seconds()) if settled else None))
        success = next((e for e in events if e.status.value == "succeeded"), None)
        invoice = data.invoices[first.invoice_id]
        result.append(Tx(
            tx_id, first.invoice_id, first.customer_id, first.method.value, first.currency, first.amount,
            events[-1].status.value, success is not None, success.completed_at if success else None, attempts,
            sum(e.status.value == "failed" for e in events),
            sum((e.refunded_amount for e in events if e.refunded_amount is not None), ZERO),
            any(e.status.value == "disputed" for e in events), ">".join(e.status.value for e in events),
            min(e.initiated_at for e in events), customer.country, customer.region,
            success is not None and success.completed_at > invoice.due_at))
    return result


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def by(rows, key):
    groups = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


BILLABLE = {"active", "past_due"}
SECOND = timedelta(seconds=1)


def as_of(data: SimulatedData) -> datetime:
    """The metrics' as-of time: the latest payment, invoice or subscription event."""
    return max(max(p.event_time for p in data.payments), max(i.event_time for i in data.invoices.values()),
               max(e.event_time for e in data.subscriptions))


def billable_at(events: list, moment: datetime) -> tuple | None:
    """(plan, interval) of a subscription billable at ``moment`` by the engine's timeline rules, else None."""
    seen = sorted((e for e in events if e.effective_time <= moment), key=lambda e: (e.effective_time, e.sequence))
    if not seen or min(e.start_time for e in seen) > moment:
        return None
    last = seen[-1]
    before = [e.status.value for e in seen if e.status.value != "canceled"]
    status = last.status.value
    if status in BILLABLE or (status == "canceled" and last.end_time > moment and before and before[-1] in BILLABLE):
        return last.plan_id, last.billing_interval.value
    return None


def mrr_rows(data: SimulatedData) -> list[tuple]:
    """(month, measured at, partial, customer, currency, mrr, mrr in USD) of every billable subscription."""
    fees = {(r[1], r[3], r[4]): r[5] for r in plan_rows(builtin_catalog())}
    subscriptions = by(data.subscriptions, lambda e: e.subscription_id)
    now = as_of(data)
    current, last = month(min(e.start_time for e in data.subscriptions)), month(now)
    rows = []
    while current <= last:
        end = datetime.combine(add_months(current, 1), datetime.min.time(), tzinfo=now.tzinfo) - SECOND
        measured = min(end, now)
        for events in subscriptions.values():
            billed = billable_at(events, measured)
            if billed is None:
                continue
            customer = data.customers[events[0].customer_id]
            fee = fees.get((billed[0], customer.currency, billed[1]), ZERO)
            mrr = ch_div(fee, 12) if billed[1] == "year" else fee
            rows.append((current, measured < end, customer.id, customer.currency, mrr, usd(mrr, customer.currency)))
        current = add_months(current, 1)
    return rows


def mrr_movements(data: SimulatedData) -> list[tuple]:
    rows = mrr_rows(data)
    native, dollars = defaultdict(Decimal), defaultdict(Decimal)
    for m, _, customer, _, mrr, mrr_usd in rows:
        native[(m, customer)] += mrr
        dollars[(m, customer)] += mrr_usd
    months = sorted({r[0] for r in rows})
    answer = []
    for m in months:
        prev = add_months(m, -1)
        moves = []
        for customer in {c for (_, c) in native}:
            before, now = native.get((prev, customer), ZERO), native.get((m, customer), ZERO)
            if before == 0 and now == 0:
                continue
            kind = ("new" if before == 0 else "churned" if now == 0 else "expansion" if now > before
                    else "contraction" if now < before else "unchanged")
            moves.append((kind, before, dollars.get((prev, customer), ZERO), dollars.get((m, customer), ZERO)))
        if not moves:
            continue
        start = sum((mv[2] for mv in moves), ZERO)
        change = {k: sum((mv[3] - mv[2] for mv in moves if mv[0] == k), ZERO)
                  for k in ("new", "expansion", "contraction", "churned")}
        starting = sum(mv[1] > 0 for mv in moves)
        churned = sum(mv[0] == "churned" for mv in moves)
        retained = sum((mv[3] for mv in moves if mv[1] > 0), ZERO)
        answer.append((m, start, change["new"], change["expansion"], change["contraction"], change["churned"],
                       sum((mv[3] for mv in moves), ZERO), starting, churned,
                       round(churned / starting, 4) if starting else None,
                       round(float(ch_div(retained, start)), 4) if start else None))
    return answer


def recognized_to_date(invoice, until: datetime) -> Fraction:
    """Exact revenue ``invoice`` recognized before ``until``: each line's share of the booked amount over
    its service time (usage and corrections whole in their usage month)."""
    booked, subtotal = invoice.total - invoice.tax, invoice.subtotal
    total = Fraction(0)
    for line in invoice.line_items:
        share = Fraction(line.amount) * (Fraction(booked) / Fraction(subtotal) if subtotal else 0)
        start, end = line.service_start, line.service_end
        if line.kind.value in ("usage", "correction") or end <= start:
            total += share if datetime.combine(month(start), datetime.min.time(), start.tzinfo) < until else 0
        else:
            elapsed = (min(max(until, start), end) - start).total_seconds()
            total += share * Fraction(int(elapsed), int((end - start).total_seconds()))
    return total


def recognized_revenue(data: SimulatedData) -> list[tuple]:
    """Per month up to the as-of month and currency: recognized, booked, credited, deferred, unbilled and the
    USD of recognized and deferred (rounded per customer), each invoice's revenue to date rounded once.
    The simulated month issues no credit notes, so credited is 0 (tests/integration/test_revenue_recognition.py
    checks credit notes)."""
    def midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=now.tzinfo)

    now = as_of(data)
    per_customer: dict[tuple, list] = defaultdict(lambda: [ZERO] * 5)
    for invoice in data.invoices.values():
        if invoice.status.value not in ("finalized", "paid"):
            continue
        booked, booked_month, quantum = invoice.total - invoice.tax, month(invoice.issued_at), MINOR_UNITS[invoice.currency]
        starts = [month(line.service_start) for line in invoice.line_items]
        ends = [month(line.service_end - SECOND) if line.kind.value not in ("usage", "correction") else month(line.service_start)
                for line in invoice.line_items]
        current, last = min([booked_month, *starts]), max([booked_month, *ends])
        before = ZERO
        while current <= last:
            exact = recognized_to_date(invoice, midnight(add_months(current, 1)))
            to_date = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal(1).scaleb(-quantum),
                                                                                     ROUND_HALF_UP)
            row = per_customer[(current, invoice.customer_id, invoice.currency)]
            row[0] += to_date - before
            row[1] += booked if current == booked_month else ZERO
            row[3] += booked - to_date if current >= booked_month else ZERO
            row[4] += to_date if current < booked_month else ZERO
            before, current = to_date, add_months(current, 1)
    answer: dict[tuple, list] = defaultdict(lambda: [ZERO] * 7)
    for (m, _, currency), row in per_customer.items():
        if m > month(now):
            continue
        totals = answer[(m, currency)]
        for index, value in enumerate([*row, usd(row[0], currency), usd(row[3], currency)]):
            totals[index] += value
    return sorted((*key, *values) for key, values in answer.items())


def sort_rows(rows: list[tuple], *keys) -> list[tuple]:
    """Sort by (column index, descending) pairs, like the views' ORDER BY."""
    for index, descending in reversed(keys):
        rows = sorted(rows, key=lambda r: r[index], reverse=descending)
    return rows


def payments_per(txs: list[Tx], period) -> list[tuple]:
    return sorted(
        (start, len(g), sum(t.succeeded for t in g), sum(not t.succeeded for t in g), sum(len(t.attempts) for t in g))
        for start, g in by(txs, lambda t: period(t.initiated_at.date())).items())


def expected_answers(data: SimulatedData, manifest: Manifest) -> dict[str, list[tuple]]:
    txs = transactions(data)
    paid = [t for t in txs if t.succeeded]
    attempts = [(t, a) for t in txs for a in t.attempts]
    invoices = list(data.invoices.values())
    customers = data.customers
    answers: dict[str, list[tuple]] = {
        "payments_per_day": payments_per(txs, lambda d: d),
        "payments_per_week": payments_per(txs, monday),
        "payments_per_month": payments_per(txs, month),
    }
    answers["average_payment_amount"] = sorted(
        (cur, len(g), sum(t.amount for t in g), ch_round(ch_div(sum(t.amount for t in g), len(g))),
         len({t.customer_id for t in g}))
        for cur, g in by(paid, lambda t: t.currency).items())
    answers["average_payment_per_customer"] = sorted(
        (cus, cur, len(g), sum(t.amount for t in g), ch_round(ch_div(sum(t.amount for t in g), len(g))))
        for (cus, cur), g in by(paid, lambda t: (t.customer_id, t.currency)).items())
    answers["payment_methods_usage"] = sort_rows([
        (m, len(g), round(100 * len(g) / len(txs), 2), sum(t.succeeded for t in g), len({t.customer_id for t in g}))
        for m, g in by(txs, lambda t: t.method).items()], (1, True), (0, False))
    failed = [(t, a) for t, a in attempts if a.outcome == "failed"]
    answers["payment_failures"] = sort_rows([
        (reason, len(g), len({t.id for t, _ in g}), len({t.id for t, _ in g if t.succeeded}),
         len({t.customer_id for t, _ in g}))
        for reason, g in by(failed, lambda ta: ta[1].failure_reason).items()], (1, True), (0, False))
    answers["failed_transactions"] = sorted(
        (m, len(g), sum(t.failures > 0 for t in g), sum(not t.succeeded and t.status == "failed" for t in g),
         sum(t.failures for t in g))
        for m, g in by(txs, lambda t: t.method).items())
    for name, key in (("revenue_by_method", lambda t: (t.method, t.currency)),
                      ("revenue_by_region", lambda t: (t.region, t.currency))):
        answers[name] = sorted(
            (*k, sum(t.succeeded for t in g), sum(t.net for t in g), sum(t.net_usd for t in g))
            for k, g in by(txs, key).items())
    answers["revenue_by_country"] = sort_rows([
        (c, g[0].currency, len({t.customer_id for t in g if t.succeeded}), sum(t.net for t in g),
         sum(t.net_usd for t in g))
        for c, g in by(txs, lambda t: t.country).items()], (4, True), (0, False))
    answers["revenue_by_region_over_time"] = sorted(
        (*k, len(g), sum(t.net for t in g), sum(t.net_usd for t in g))
        for k, g in by(paid, lambda t: (month(t.succeeded_at), t.region, t.currency)).items())
    now = as_of(data)
    answers["outstanding_payments"] = sorted(
        ((i.id, i.customer_id, customers[i.customer_id].company_name, i.currency, i.total, usd(i.total, i.currency),
          i.due_at, now, int(i.due_at < now), (now.date() - i.due_at.date()).days if i.due_at < now else 0)
         for i in invoices if i.status.value == "finalized"), key=lambda r: (r[6], r[0]))
    answers["delayed_payments"] = sort_rows([
        (i.id, i.customer_id, i.currency, i.total, i.due_at, i.paid_at, (i.paid_at.date() - i.due_at.date()).days)
        for i in invoices if i.paid_at is not None and i.paid_at > i.due_at], (6, True), (0, False))
    answers["customer_ltv"] = sort_rows([
        (cus, customers[cus].company_name, customers[cus].region, customers[cus].currency,
         sum(t.succeeded for t in g), sum(t.net for t in g), sum(t.net_usd for t in g),
         min(t.succeeded_at for t in g if t.succeeded), max(t.succeeded_at for t in g if t.succeeded))
        for cus, g in by(txs, lambda t: t.customer_id).items() if any(t.succeeded for t in g)], (6, True), (0, False))
    frequency = []
    for cus, g in by(paid, lambda t: t.customer_id).items():
        first, last = min(t.succeeded_at for t in g), max(t.succeeded_at for t in g)
        gap = round((last - first).total_seconds() / (len(g) - 1) / 86400, 2) if len(g) > 1 else None
        frequency.append((cus, len(g), first, last, gap))
    answers["payment_frequency"] = sort_rows(frequency, (1, True), (0, False))
    trouble = []
    for cus, g in by(txs, lambda t: t.customer_id).items():
        row = (cus, sum(t.disputed for t in g), sum(t.refunded > 0 for t in g), sum(t.refunded for t in g),
               g[0].currency, sum(t.paid_late for t in g), sum(t.failures for t in g))
        if row[1] + row[2] + row[5] > 0:
            trouble.append(row)
    answers["payment_disputes"] = sort_rows(trouble, (1, True), (2, True), (5, True), (0, False))
    booked = [i for i in invoices if i.status.value in ("finalized", "paid")]
    issued = by(booked, lambda i: month(i.issued_at))
    collected = by(paid, lambda t: month(t.succeeded_at))
    answers["billing_seasonality"] = sorted(
        (m, len(issued.get(m, [])), sum((usd(i.total - i.tax, i.currency) for i in issued.get(m, [])), ZERO),
         len(collected.get(m, [])), sum((t.net_usd for t in collected.get(m, [])), ZERO))
        for m in set(issued) | set(collected))
    answers["busiest_payment_days"] = sort_rows([
        (day, g[0][1].initiated_at.strftime("%A"), len(g), sum(a.outcome == "succeeded" for _, a in g))
        for day, g in by(attempts, lambda ta: ta[1].initiated_at.isoweekday()).items()], (2, True), (0, False))
    answers["busiest_payment_hours"] = sort_rows([
        (hour, len(g), sum(a.outcome == "succeeded" for _, a in g))
        for hour, g in by(attempts, lambda ta: ta[1].initiated_at.hour).items()], (1, True), (0, False))
    settled = [(t, a) for t, a in attempts if a.outcome != "pending"]
    answers["payment_processing_time"] = sorted(
        (m, len(g), round(sum(a.seconds for _, a in g) / len(g), 1), min(a.seconds for _, a in g),
         max(a.seconds for _, a in g))
        for m, g in by(settled, lambda ta: ta[0].method).items())
    rates = []
    for m, g in [*by(txs, lambda t: t.method).items(), ("all", txs)]:
        flying = sum(t.status == "initiated" for t in g)
        ok, tries = sum(t.succeeded for t in g), sum(len(t.attempts) for t in g) - flying
        rates.append((m, len(g), flying, ok, round(ok / (len(g) - flying), 4), tries, round(ok / tries, 4)))
    answers["payment_success_rate"] = sorted(rates)
    answers["payment_retries"] = sorted(
        (r, len(g), sum(t.succeeded for t in g), sum(not t.succeeded for t in g))
        for r, g in by(txs, lambda t: len(t.attempts) - 1).items())
    answers["payment_status_patterns"] = sort_rows([
        (path, n, round(100 * n / len(txs), 2)) for path, n in Counter(t.path for t in txs).items()],
        (1, True), (0, False))
    mrr: dict[tuple, list] = defaultdict(lambda: [ZERO, set(), ZERO, False])
    for m, partial, customer, currency, amount, amount_usd in mrr_rows(data):
        row = mrr[(m, currency)]
        row[0] += amount
        row[1].add(customer)
        row[2] += amount_usd
        row[3] = partial
    answers["monthly_recurring_revenue"] = sorted(
        (*k, v[0], v[0] * 12, len(v[1]), v[2], int(v[3])) for k, v in mrr.items())
    answers["mrr_movements"] = mrr_movements(data)
    answers["recognized_revenue"] = recognized_revenue(data)
    meters = active_meters()
    monthly = []
    for (m, meter, customer), hours in by(manifest.usage("hour"), lambda u: (month(u.window_start), u.meter,
                                                                            u.customer_id)).items():
        aggregation = meters[meter].aggregation.value
        values = [u.value for u in hours]
        quantity = (max(values) if aggregation in ("MAX", "UNIQUE_COUNT")
                    else max(hours, key=lambda u: u.window_start).value if aggregation == "LATEST" else sum(values))
        monthly.append((m, meter, aggregation, quantity, customer, sum(u.events for u in hours)))
    answers["usage_by_meter"] = sorted(
        (m, meter, g[0][2], sum(r[3] for r in g), len({r[4] for r in g}), sum(r[5] for r in g))
        for (m, meter), g in by(monthly, lambda r: (r[0], r[1])).items())
    products = {r[0]: r[1] for r in plan_rows(builtin_catalog())}
    usage_lines = [(i, line) for i in booked for line in i.line_items if line.kind.value == "usage"]
    answers["usage_revenue"] = sorted(
        (*key, sum(line.quantity for _, line in g), sum(line.amount for _, line in g),
         sum(usd(line.amount, i.currency) for i, line in g), len({i.customer_id for i, _ in g}))
        for key, g in by(usage_lines, lambda il: (month(il[0].period_start), il[1].meter,
                                                  products[il[1].charge.split(".")[0]], il[1].charge.split(".")[1],
                                                  il[0].currency)).items())
    return answers


def same(actual, expected) -> bool:
    if isinstance(actual, float) or isinstance(expected, float):
        return actual is not None and expected is not None and abs(actual - expected) <= 0.0101
    if isinstance(actual, bool) or isinstance(expected, bool):
        return int(actual) == int(expected)
    return actual == expected


@pytest.fixture(scope="module")
def expected(marts: BuiltMarts) -> dict[str, list[tuple]]:
    return expected_answers(marts.data, Manifest.load(marts.data.manifest_dir))


def test_every_question_has_an_independent_expectation(expected: dict) -> None:
    assert set(expected) == set(report.questions())


@pytest.mark.parametrize("name", sorted(report.questions()))
def test_report_answer_matches_the_simulated_records(marts: BuiltMarts, expected: dict, name: str) -> None:
    answer = report.answer(marts.settings, report.questions()[name])
    want = expected[name]
    assert want, f"{name}: the simulated data should give a non-empty answer"
    assert len(answer.rows) == len(want), (answer.rows[:5], want[:5])
    for got_row, want_row in zip(answer.rows, want, strict=True):
        assert len(got_row) == len(want_row) and all(map(same, got_row, want_row)), (got_row, want_row)


def test_report_cli_lists_questions_and_writes_csv(marts: BuiltMarts, tmp_path: Path) -> None:
    listed = billing_cli(marts.settings, "report", "--list")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in report.questions())
    result = billing_cli(marts.settings, "report", "payment_retries", "revenue_by_region", "--csv-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "payment_retries: How many retries are needed for failed transactions?" in " ".join(result.stdout.split())
    for name in ("payment_retries", "revenue_by_region"):
        answer = report.answer(marts.settings, report.questions()[name])
        with (tmp_path / f"{name}.csv").open() as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == list(answer.columns)
        assert rows[1:] == [[str(v) for v in row] for row in answer.rows]
    unknown = billing_cli(marts.settings, "report", "no_such_question")
    assert unknown.returncode != 0 and "unknown question(s) no_such_question" in unknown.stderr
