"""Pure parts of invoicing: periods and ids, plan spans and proration boundaries, usage per span,
corrections of late usage, lifecycle transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.contracts import InvoiceStatus, LineItem, LineKind
from billing.core.invoicing import compose
from billing.core.invoicing.errors import InvalidTransition, NoSubscription, PeriodError
from billing.core.invoicing.lifecycle import transition
from billing.core.invoicing.periods import closed_period, invoice_id, label, parse_period
from billing.core.invoicing.timeline import PlanSpan, SubscriptionChange, plan_spans
from billing.core.invoicing.usage import HourStats, quantity, span_stats
from billing.core.meters import Aggregation
from billing.core.pricing import builtin_catalog

SEP = parse_period("2026-09")
T = lambda day, hour=0, minute=0, second=0: datetime(2026, 9, day, hour, minute, second, tzinfo=UTC)  # noqa: E731
SIGNUP = datetime(2025, 1, 10, 8, tzinfo=UTC)
CATALOG = builtin_catalog()


def change(seq: int, when: datetime, plan: str = "growth", status: str = "active", end: datetime | None = None, sub: str = "sub-1"):
    return SubscriptionChange(sub, seq, plan, status, SIGNUP, end, when)


# ------------------------------------------------------------------------------- periods, ids


def test_periods_parse_and_must_be_closed():
    assert (SEP.start, SEP.end) == (T(1), datetime(2026, 10, 1, tzinfo=UTC)) and label(SEP) == "2026-09"
    assert parse_period("2024-12").end == datetime(2025, 1, 1, tzinfo=UTC)
    for bad in ("2026-13", "2026-9", "09-2026", "", "1969-01"):
        with pytest.raises(PeriodError, match="not a month like"):
            parse_period(bad)
    assert closed_period("2026-09", datetime(2026, 10, 1, tzinfo=UTC)) == SEP
    with pytest.raises(PeriodError, match="still open"):
        closed_period("2026-09", datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC))
    with pytest.raises(PeriodError, match="in the future"):
        closed_period("2026-10", T(30))


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}", fullmatch=True), st.integers(1970, 2200), st.integers(1, 12))
def test_invoice_ids_are_deterministic_valid_and_distinct_per_period(customer, year, month):
    period = parse_period(f"{year}-{month:02d}")
    first = invoice_id(customer, period)
    assert first == invoice_id(customer, period) and len(first) <= 128 and first.endswith(f"-{year}{month:02d}")
    later = parse_period(f"{year + 1}-{month:02d}")
    assert invoice_id(customer, later) != first


# --------------------------------------------------------------------------------- plan spans


def test_a_full_month_on_one_plan_is_one_span():
    assert plan_spans([change(1, SIGNUP, status="trialing"), change(2, SIGNUP + timedelta(days=14))], SEP) == [
        PlanSpan("sub-1", "growth", SEP.start, SEP.end, "month", SIGNUP)]


def test_plan_change_splits_the_month_on_the_second_and_fractions_add_up():
    changes = [change(1, SIGNUP, "starter"), change(2, T(10, 13, 45, 30).replace(microsecond=987654), "growth")]
    first, second = plan_spans(changes, SEP)
    assert (first.plan_id, first.end, second.plan_id, second.start) == ("starter", T(10, 13, 45, 30), "growth", T(10, 13, 45, 30))
    assert SEP.fraction(first.period) + SEP.fraction(second.period) == 1


def test_trial_is_free_and_starts_billing_when_active():
    spans = plan_spans([change(1, T(5), status="trialing"), change(2, T(19, 6))], SEP)
    assert spans == [PlanSpan("sub-1", "growth", T(19, 6), SEP.end, "month", SIGNUP)]


def test_cancellation_bills_until_end_of_service_and_status_changes_do_not_split():
    changes = [change(1, SIGNUP), change(2, T(3), status="past_due"), change(3, T(6), status="active"),
               change(4, T(12), status="canceled", end=T(20))]
    assert plan_spans(changes, SEP) == [PlanSpan("sub-1", "growth", SEP.start, T(20), "month", SIGNUP)]
    assert plan_spans([change(1, SIGNUP), change(2, T(1), status="canceled", end=T(1))], SEP) == []


def test_canceled_during_trial_is_never_billed_and_future_events_are_ignored():
    assert plan_spans([change(1, T(2), status="trialing"), change(2, T(9), status="canceled", end=T(16))], SEP) == []
    assert plan_spans([change(1, datetime(2026, 10, 2, tzinfo=UTC))], SEP) == []


@given(st.lists(st.tuples(st.integers(0, 30 * 86400 - 1), st.sampled_from(["starter", "growth", "business"]),
                          st.sampled_from(["active", "past_due", "trialing"])), min_size=1, max_size=6))
def test_spans_never_overlap_and_stay_inside_the_period(events):
    changes = [change(n, SEP.start + timedelta(seconds=s), plan, status) for n, (s, plan, status) in enumerate(events, 1)]
    spans = plan_spans(changes, SEP)
    for span in spans:
        assert SEP.start <= span.start < span.end <= SEP.end
    for before, after in pairwise(spans):
        assert before.end <= after.start and (before.end < after.start or before.plan_id != after.plan_id)
    assert sum(SEP.fraction(s.period) for s in spans) <= 1


# ------------------------------------------------------------------------------ usage per span


def test_hours_belong_to_the_span_their_window_starts_in():
    spans = [PlanSpan("s", "starter", SEP.start, T(10, 13, 30)), PlanSpan("s", "growth", T(10, 13, 30), SEP.end)]
    hours = [("api_calls", T(10, 12), Decimal(5)), ("api_calls", T(10, 13), Decimal(7)), ("api_calls", T(10, 14), Decimal(11)),
             ("active_seats", T(2, 9), Decimal(4)), ("active_seats", T(3, 9), Decimal(9)), ("active_seats", T(4, 9), Decimal(6)),
             ("api_calls", datetime(2026, 8, 31, 23, tzinfo=UTC), Decimal(100))]
    before, after = span_stats(hours, spans)
    assert before["api_calls"] == HourStats(Decimal(12), Decimal(7), Decimal(7))
    assert after["api_calls"] == HourStats(Decimal(11), Decimal(11), Decimal(11))
    assert before["active_seats"] == HourStats(Decimal(19), Decimal(9), Decimal(6))


@pytest.mark.parametrize(("aggregation", "expected"), [
    (Aggregation.SUM, 19), (Aggregation.COUNT, 19), (Aggregation.UNIQUE_COUNT, 9), (Aggregation.MAX, 9), (Aggregation.LATEST, 6),
])
def test_billed_quantity_by_aggregation(aggregation, expected):
    assert quantity(aggregation, HourStats(Decimal(19), Decimal(9), Decimal(6))) == expected


# ----------------------------------------------------------------------------- composition


CUSTOMER = compose.BillingCustomer("cus-1", "USD", "US")


def test_plan_of_a_span_is_the_product_in_the_customer_currency():
    span = PlanSpan("s", "growth", SEP.start, SEP.end)
    euro = compose.BillingCustomer("cus-2", "EUR", "DE")
    assert [s.plan.id for s in compose.terms(euro, [span], [{}], CATALOG)] == ["growth_eur"]
    with pytest.raises(NoSubscription, match="cus-1 has no subscription billable"):
        compose.terms(CUSTOMER, [], [], CATALOG)


def _billed(priced) -> list[LineItem]:
    return list(compose.draft(priced, invoice_id="inv-cus-1-202609", customer_id="cus-1", subscription_id="s",
                              now=datetime(2026, 10, 2, tzinfo=UTC)).line_items)


def test_late_usage_is_corrected_once_by_the_difference():
    span = [PlanSpan("s", "starter", SEP.start, SEP.end)]
    billed = _billed(compose.price(SEP, CUSTOMER, span, [{"api_calls": Decimal(150_000)}], CATALOG))
    repriced = compose.price(SEP, CUSTOMER, span, [{"api_calls": Decimal(160_000)}], CATALOG)
    lines = compose.corrections(repriced, compose.billed_by_charge(billed, SEP), "inv-cus-1-202609")
    assert [(line.plan_id, line.charge_id, line.quantity, line.amount, line.model) for line in lines] == [
        ("starter", "api_calls@2026-09", Decimal(10_000), Decimal("4.00"), "correction")]
    october = compose.price(parse_period("2026-10"), CUSTOMER, [PlanSpan("s", "starter", *_bounds("2026-10"))], [{}], CATALOG,
                            corrections=lines)
    on_october = [item for item in _billed(october) if item.kind is LineKind.CORRECTION]
    assert [(i.charge, i.amount) for i in on_october] == [("starter.api_calls@2026-09", Decimal("4.00"))]
    assert compose.corrections(repriced, compose.billed_by_charge(billed + on_october, SEP), "inv") == []


def test_corrections_follow_the_minimum_commitment_true_up():
    span = [PlanSpan("s", "growth", SEP.start, SEP.end)]
    billed = _billed(compose.price(SEP, CUSTOMER, span, [{"api_calls": Decimal(1000)}], CATALOG))
    repriced = compose.price(SEP, CUSTOMER, span, [{"api_calls": Decimal(201_000)}], CATALOG)
    lines = compose.corrections(repriced, compose.billed_by_charge(billed, SEP), "inv")
    assert {line.charge_id: line.amount for line in lines} == {"api_calls@2026-09": Decimal("60.00"),
                                                               "minimum_commitment@2026-09": Decimal("-60.00")}


def _bounds(text: str) -> tuple[datetime, datetime]:
    period = parse_period(text)
    return period.start, period.end


# -------------------------------------------------------------------------------- lifecycle


def test_lifecycle_transitions_and_refusals():
    draft = compose.draft(compose.price(SEP, CUSTOMER, [PlanSpan("s", "starter", SEP.start, SEP.end)], [{}], CATALOG),
                          invoice_id="inv-1", customer_id="cus-1", subscription_id="s", now=datetime(2026, 10, 2, tzinfo=UTC))
    at = datetime(2026, 10, 3, tzinfo=UTC)
    final = transition(draft, InvoiceStatus.FINALIZED, at, due_days=14)
    assert (final.status, final.issued_at, final.due_at, final.line_items) == (
        InvoiceStatus.FINALIZED, at, at + timedelta(days=14), draft.line_items)
    paid = transition(final, InvoiceStatus.PAID, at, due_days=14)
    assert paid.paid_at > final.event_time and paid.event_time > final.event_time
    with pytest.raises(InvalidTransition, match="cannot void invoice inv-1: it is paid; refund the payment instead"):
        transition(paid, InvoiceStatus.VOID, at, 14)
    void = transition(draft, InvoiceStatus.VOID, at, 14)
    for target in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID, InvoiceStatus.VOID):
        with pytest.raises(InvalidTransition, match="it is void"):
            transition(void, target, at, 14)
    with pytest.raises(InvalidTransition, match="it is draft; finalize it first"):
        transition(draft, InvoiceStatus.PAID, at, 14)
