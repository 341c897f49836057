"""Report jobs and usage reports: the pure rules (job lifecycle, report content, CSV)."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from billing.core.contracts import ReportFormat, ReportJob
from billing.core.errors import ConfigError
from billing.core.invoicing.usage import HourStats, quantity
from billing.core.meters import DEFAULT_METERS, Aggregation, MeterSet
from billing.core.pricing.proration import month_period
from billing.core.reports import finance, scale, schedules, table
from billing.core.reports.jobs import (
    TERMINAL,
    InvalidJobTransition,
    JobStatus,
    StaleAttempt,
    advance,
    begin,
    complete,
    expire,
    fail,
    fence,
    job_id,
    queued,
    retry_later,
    same_request,
)
from billing.core.reports.usage import NO_DIMENSIONS, ReportAlert, UsageReport, meter_usage
from billing.reports import pdf

T0 = datetime(2026, 9, 1, tzinfo=UTC)
SEPTEMBER = month_period(T0)
METERS = MeterSet(DEFAULT_METERS)


def a_job(**changes) -> ReportJob:
    fields = dict(id=job_id("cli", "k1"), customer_id="cus-1", period="2026-09", format=ReportFormat.CSV,
                  requested_at=T0, requested_by="cli", idempotency_key="k1")
    return ReportJob(**{**fields, **changes})


def test_job_ids_follow_the_requester_and_key():
    assert job_id("cli", "k1") == job_id("cli", "k1")
    assert len({job_id("cli", "k1"), job_id("cli", "k2"), job_id("key-a", "k1")}) == 3
    assert job_id("cli", "k1").startswith("rpt-") and len(job_id("cli", "k1")) == 28


def test_same_request_ignores_times_only():
    assert same_request(a_job(), a_job(requested_at=T0 + timedelta(hours=1)))
    assert not same_request(a_job(), a_job(format=ReportFormat.PDF))
    assert not same_request(a_job(), a_job(period="2026-08"))


def test_a_job_runs_progresses_and_completes():
    state = queued(a_job())
    assert (state.status, state.version, state.attempts) == (JobStatus.QUEUED, 0, 0)
    running = begin(state, T0, max_attempts=3)
    assert (running.status, running.attempts, running.progress) == (JobStatus.RUNNING, 1, 0)
    halfway = advance(running, 50, T0)
    assert halfway.progress == 50 and advance(halfway, 20, T0).progress == 50, "progress never goes back"
    assert advance(halfway, 150, T0).progress == 99, "100 only on completion"
    done = complete(halfway, "x.csv", T0 + timedelta(seconds=1))
    assert (done.status, done.progress, done.file, done.finished_at) == (JobStatus.COMPLETED, 100, "x.csv", T0 + timedelta(seconds=1))
    gone = expire(done, T0 + timedelta(days=8))
    assert gone.status is JobStatus.EXPIRED and gone.file is None


def test_versions_increase_strictly_even_within_one_microsecond():
    states = [queued(a_job())]
    states.append(begin(states[-1], T0, 3))
    for percent in (10, 20, 30):
        states.append(advance(states[-1], percent, T0))
    states.append(complete(states[-1], "f", T0))
    versions = [s.version for s in states]
    assert versions == sorted(set(versions)) and versions[0] == 0


def test_a_crashed_job_is_retried_a_bounded_number_of_times():
    state = queued(a_job())
    for attempt in range(1, 4):
        state = begin(state, T0 + timedelta(minutes=attempt), max_attempts=3)
        assert (state.status, state.attempts) == (JobStatus.RUNNING, attempt)
    state = begin(retry_later(state, "warehouse away", T0 + timedelta(minutes=5)), T0 + timedelta(minutes=6), max_attempts=3)
    assert state.status is JobStatus.FAILED
    assert "gave up after 3 attempt(s)" in state.error and "warehouse away" in state.error


def test_a_superseded_attempt_s_late_writes_never_outrank_the_current_attempt():
    stalled = begin(queued(a_job()), T0, 3)
    current = begin(stalled, T0 + timedelta(seconds=10), 3)
    late = [advance(stalled, 90, T0 + timedelta(hours=1)), complete(stalled, "f", T0 + timedelta(hours=1)),
            fail(stalled, "x", T0 + timedelta(hours=1))]
    assert all(state.version < current.version for state in late)


def test_only_the_current_running_attempt_may_finish_the_job():
    stalled = begin(queued(a_job()), T0, 3)
    fence(stalled, advance(stalled, 40, T0))
    current = begin(stalled, T0 + timedelta(seconds=10), 3)
    for latest in (current, complete(current, "f", T0), fail(stalled, "x", T0), None):
        with pytest.raises(StaleAttempt, match="attempt 1 was superseded"):
            fence(complete(stalled, "f", T0), latest)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_jobs_never_run_or_complete_again(status):
    done = complete(begin(queued(a_job()), T0, 3), "f", T0)
    state = {JobStatus.COMPLETED: done, JobStatus.EXPIRED: expire(done, T0),
             JobStatus.FAILED: fail(queued(a_job()), "no", T0)}[status]
    for transition in (lambda s: begin(s, T0, 3), lambda s: complete(s, "g", T0), lambda s: fail(s, "x", T0),
                       lambda s: advance(s, 5, T0)):
        with pytest.raises(InvalidJobTransition, match=f"is {status.value}"):
            transition(state)


def test_only_completed_jobs_expire():
    with pytest.raises(InvalidJobTransition):
        expire(begin(queued(a_job()), T0, 3), T0)


def hour(day: int, h: int) -> datetime:
    return T0 + timedelta(days=day - 1, hours=h)


def test_meter_usage_uses_each_meter_s_own_aggregation():
    rows = [
        ("api_calls", hour(1, 0), "region=eu", Decimal(10)), ("api_calls", hour(1, 1), "region=us", Decimal(5)),
        ("api_calls", hour(2, 3), "region=eu", Decimal(7)),
        ("active_seats", hour(1, 0), "", Decimal(4)), ("active_seats", hour(3, 5), "", Decimal(9)),
        ("active_seats", hour(4, 5), "", Decimal(2)),
        ("api_calls", hour(31, 0), "region=eu", Decimal(1000)),  # October: outside the period
        ("not_a_meter", hour(1, 0), "", Decimal(1)),
    ]
    found = {m.meter: m for m in meter_usage(METERS, rows, SEPTEMBER)}
    assert set(found) == {"api_calls", "active_seats"}
    calls, seats = found["api_calls"], found["active_seats"]
    assert calls.total == 22 and calls.daily[0] == (date(2026, 9, 1), Decimal(15)) and calls.daily[1][1] == 7
    assert len(calls.daily) == 30 and sum(v for _d, v in calls.daily) == calls.total
    assert calls.top == (("region=eu", Decimal(17)), ("region=us", Decimal(5)))
    assert seats.total == 9 and seats.daily[2][1] == 9 and seats.top == ((NO_DIMENSIONS, Decimal(9)),)


@given(st.lists(st.tuples(st.integers(0, 30 * 24 - 1), st.sampled_from(["a", "b", "c"]),
                          st.decimals(0, 10**6, places=3)), max_size=60))
def test_sum_meters_add_up_and_peak_meters_peak(hours):
    rows = [("api_calls", T0 + timedelta(hours=h), g, v) for h, g, v in hours]
    rows += [("active_seats", T0 + timedelta(hours=h), g, v) for h, g, v in hours]
    found = {m.meter: m for m in meter_usage(METERS, rows, SEPTEMBER, top=10)}
    if not hours:
        assert found == {}
        return
    calls, seats = found["api_calls"], found["active_seats"]
    assert calls.total == sum(v for _h, _g, v in hours) == sum(v for _d, v in calls.daily) == sum(v for _g, v in calls.top)
    assert METERS["active_seats"].aggregation is Aggregation.UNIQUE_COUNT
    assert seats.total == max(v for _h, _g, v in hours) == max(v for _d, v in seats.daily)
    assert seats.total == quantity(Aggregation.UNIQUE_COUNT, HourStats(Decimal(0), seats.total, Decimal(0)))


def test_csv_has_one_row_per_fact_and_the_totals():
    rows = [("api_calls", hour(1, 0), "region=eu", Decimal("10.500")), ("api_calls", hour(2, 0), "region=us", Decimal(5))]
    alert = ReportAlert(hour(2, 1), "usage.threshold.exceeded", "api-80", "api_calls", Decimal("15.5"))
    report = UsageReport("cus-1", "Acme", SEPTEMBER, T0, meter_usage(METERS, rows, SEPTEMBER), None, "no subscription", (), (alert,))
    parsed = list(csv.DictReader(io.StringIO(table.to_csv(report))))
    assert list(parsed[0]) == list(table.COLUMNS)
    totals = [r for r in parsed if r["section"] == "total"]
    assert totals == [{"section": "total", "meter": "api_calls", "key": "", "value": "15.5", "unit": "calls", "detail": "SUM"}]
    assert [r["key"] for r in parsed if r["section"] == "daily"][:2] == ["2026-09-01", "2026-09-02"]
    assert [(r["key"], r["value"]) for r in parsed if r["section"] == "top_dimension"] == [("region=eu", "10.5"), ("region=us", "5")]
    assert [r for r in parsed if r["section"].startswith("cost")] == []
    assert [(r["key"], r["value"]) for r in parsed if r["section"] == "alert"] == [("api-80", "15.5")]


def test_a_finance_summary_names_no_customer_and_a_usage_report_names_one():
    from billing.core.contracts import ReportKind

    assert a_job(kind=ReportKind.FINANCE_SUMMARY, customer_id=None).customer_id is None
    with pytest.raises(ValueError, match="do not name a customer"):
        a_job(kind=ReportKind.FINANCE_SUMMARY)
    with pytest.raises(ValueError, match="needs a customer"):
        a_job(customer_id=None)


def _outstanding(total_usd: str, overdue: bool) -> dict:
    return {"total_usd": Decimal(total_usd), "overdue": int(overdue), "as_of": T0 + timedelta(days=40)}


def test_finance_summary_passes_the_answers_through_and_sums_outstanding_rows():
    seasonality = {"month_start": T0.date(), "invoices": 3, "booked_usd": Decimal("120.50"), "payments": 2,
                   "collected_usd": Decimal("80.000000000")}
    movements = {"month_start": T0.date(), "starting_mrr_usd": Decimal(100), "new_mrr_usd": Decimal(30),
                 "expansion_mrr_usd": Decimal(5), "contraction_mrr_usd": Decimal(-2), "churned_mrr_usd": Decimal(-10),
                 "ending_mrr_usd": Decimal(123), "starting_customers": 4, "churned_customers": 1, "logo_churn_rate": 0.25,
                 "net_revenue_retention": 0.93}
    month_rows = [_outstanding("10.00", False)]
    every = [*month_rows, _outstanding("7.25", True), _outstanding("1.75", True)]
    summary = finance.summarize(SEPTEMBER, T0, seasonality, movements, month_rows, every)
    assert summary.value("booked", "booked_usd") == Decimal("120.50") and summary.value("collected", "payments") == 2
    assert [(f.metric, f.value) for f in summary.section("outstanding")] == [
        ("booked_in_month_invoices", 1), ("booked_in_month_usd", Decimal("10.00")), ("booked_in_month_overdue_invoices", 0),
        ("booked_in_month_overdue_usd", 0), ("all_invoices", 3), ("all_usd", Decimal("19.00")),
        ("all_overdue_invoices", 2), ("all_overdue_usd", Decimal("9.00"))]
    assert {f.metric: f.value for f in summary.section("mrr")} == {k: v for k, v in movements.items() if k != "month_start"}
    assert summary.as_of == T0 + timedelta(days=40)
    rows = list(csv.DictReader(io.StringIO(finance.to_csv(summary))))
    assert len(rows) == len(summary.figures) and tuple(rows[0]) == finance.COLUMNS
    by_metric = {(r["section"], r["metric"]): (r["value"], r["unit"]) for r in rows}
    assert by_metric[("collected", "collected_usd")] == ("80", "USD")
    assert by_metric[("mrr", "logo_churn_rate")] == ("0.25", "")


def test_the_finance_pdf_charts_negative_movements_on_a_round_axis(tmp_path):
    movements = {"month_start": T0.date(), "starting_mrr_usd": Decimal(100), "new_mrr_usd": Decimal(30),
                 "expansion_mrr_usd": Decimal(5), "contraction_mrr_usd": Decimal(-2), "churned_mrr_usd": Decimal(-60),
                 "ending_mrr_usd": Decimal(73), "starting_customers": 4, "churned_customers": 1, "logo_churn_rate": 0.25,
                 "net_revenue_retention": 0.93}
    seasonality = {"month_start": T0.date(), "invoices": 0, "booked_usd": Decimal(0), "payments": 0, "collected_usd": Decimal(0)}
    summary = finance.summarize(SEPTEMBER, T0, seasonality, movements, [], [])
    text = " ".join(page.extract_text() for page in PdfReader(pdf.render_finance(summary, tmp_path / "f.pdf")).pages)
    assert all(label in text.split() for label in ("-100", "-50", "0", "50", "new", "expansion", "contraction", "churned"))


def test_a_month_without_rows_is_zero_and_its_ratios_are_empty():
    summary = finance.summarize(SEPTEMBER, T0, None, None, [], [])
    assert summary.value("booked", "booked_usd") == 0 and summary.value("mrr", "ending_mrr_usd") == 0
    assert summary.value("mrr", "net_revenue_retention") is None and summary.as_of is None
    assert ",net_revenue_retention,," in finance.to_csv(summary)


def test_monthly_runs_report_the_last_closed_month_and_daily_runs_yesterday_s_month_to_date():
    monthly = schedules.Schedule(id="m", every="monthly")
    daily = schedules.Schedule(id="d", every="daily", format="csv", customers=["cus-1"])
    first = datetime(2026, 10, 1, 0, 5, tzinfo=UTC)
    assert (schedules.due(monthly, first).key, schedules.due(monthly, first).period) == ("2026-09", "2026-09")
    assert schedules.due(monthly, datetime(2026, 10, 31, 23, tzinfo=UTC)).key == "2026-09"
    assert (schedules.due(daily, first).key, schedules.due(daily, first).period) == ("2026-09-30", "2026-09")
    assert schedules.due(daily, first + timedelta(days=1)).period == "2026-10"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["daily", "monthly"]))
def test_a_run_s_job_ids_depend_only_on_schedule_period_and_customer(now, every):
    schedule = schedules.Schedule(id="s", every=every)
    run, later = schedules.due(schedule, now), schedules.due(schedule, now + timedelta(hours=1))
    assert (run.key == later.key) == (schedules.idempotency_key(run, "c") == schedules.idempotency_key(later, "c"))
    assert run.period <= f"{now:%Y-%m}" and run.period == run.key[:7]
    assert len({schedules.idempotency_key(run, c) for c in ("c1", "c2", None)}) == 3


@pytest.mark.parametrize(("document", "message"), [
    ({"schedules": [{"id": "a", "every": "weekly"}]}, "schedule a: every: Input should be 'daily' or 'monthly'"),
    ({"schedules": [{"id": "a", "every": "daily", "kind": "finance_summary", "customers": ["c"]}]}, "leave out customers"),
    ({"schedules": [{"id": "a", "every": "daily", "customers": []}]}, "non-empty list"),
    ({"schedules": [{"id": "a", "every": "daily", "colour": "red"}]}, "colour: Extra inputs are not permitted"),
    ({"schedules": [{"id": "a", "every": "daily"}, {"id": "a", "every": "monthly"}]}, "'a' is used twice"),
    ({"rules": []}, "one key, `schedules`"),
])
def test_bad_schedules_are_refused_with_the_file_and_schedule_named(document, message):
    with pytest.raises(ConfigError, match="^x.yaml: .*" + re.escape(message)):
        schedules.parse_schedules(document, "x.yaml")


finite = st.floats(min_value=-1e12, max_value=1e12) | st.sampled_from([0.0, 5e-324, -1e-300, 1e-10])


@given(finite, finite)
def test_chart_ticks_are_round_include_zero_and_cover_the_values(a, b):
    low, high = min(a, b), max(a, b)
    steps = scale.ticks(low, high)
    gap = steps[1] - steps[0]
    assert 2 <= len(steps) <= 10
    assert all(math.isclose(later - earlier, gap) for earlier, later in pairwise(steps))
    mantissa = gap / 10 ** math.floor(math.log10(gap))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5, 10))
    slack = gap * 1e-9  # float rounding
    assert steps[0] <= min(low, 0) + slack and steps[-1] >= max(high, 0) - slack
    assert any(step == 0 for step in steps)
