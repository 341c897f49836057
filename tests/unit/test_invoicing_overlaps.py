"""Which invoices already bill some of a month, so the invoice run skips the customer (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing.core.contracts import InvoiceStatus
from billing.core.invoicing.periods import invoice_id, parse_period
from billing.core.pricing.proration import Period
from billing.invoicing.overlaps import blocking, overlaps
from billing.invoicing.store import InvoiceHead

SEP = parse_period("2026-09")
D = lambda month, day: datetime(2026, month, day, tzinfo=UTC)  # noqa: E731


def head(invoice: str, start: datetime, end: datetime, status: InvoiceStatus = InvoiceStatus.FINALIZED,
         customer: str = "cus-1") -> InvoiceHead:
    return InvoiceHead(invoice, customer, start, end, status)


def test_half_open_periods_overlap_only_when_they_share_time():
    assert overlaps(Period(D(8, 20), D(9, 20)), SEP) and overlaps(Period(D(9, 20), D(10, 20)), SEP)  # partial, both ends
    assert overlaps(Period(D(9, 5), D(9, 6)), SEP) and overlaps(Period(D(8, 1), D(11, 1)), SEP)  # inside, around
    assert overlaps(SEP, SEP)
    assert not overlaps(Period(D(8, 1), D(9, 1)), SEP)  # ends when September starts
    assert not overlaps(Period(D(10, 1), D(11, 1)), SEP)  # starts when September ends
    assert not overlaps(Period(D(9, 1) - timedelta(milliseconds=1), D(9, 1)), SEP)
    assert overlaps(Period(D(9, 1) - timedelta(milliseconds=1), D(9, 1) + timedelta(milliseconds=1)), SEP)


@given(st.integers(0, 20), st.integers(1, 10), st.integers(0, 20), st.integers(1, 10))
def test_overlap_means_some_second_is_in_both(a, a_len, b, b_len):
    start = D(9, 1)
    first = Period(start + timedelta(seconds=a), start + timedelta(seconds=a + a_len))
    second = Period(start + timedelta(seconds=b), start + timedelta(seconds=b + b_len))
    shared = set(range(a, a + a_len)) & set(range(b, b + b_len))
    assert overlaps(first, second) == overlaps(second, first) == bool(shared)


def test_blocking_takes_other_invoices_that_are_not_void_and_overlap():
    heads = [
        head("inv-1-20260920", D(8, 20), D(9, 20)),                                     # foreign, partial: blocks
        head("inv-1-20260820", D(7, 20), D(8, 20)),                                     # foreign, before: no
        head("inv-1-20261020", D(9, 20), D(10, 20), InvoiceStatus.DRAFT),               # foreign draft: blocks
        head("inv-1-void", D(9, 1), D(10, 1), InvoiceStatus.VOID),                      # void: no
        head(invoice_id("cus-1", SEP), SEP.start, SEP.end),                             # the run's own: no
        head(invoice_id("cus-2", SEP), SEP.start, SEP.end, customer="cus-2"),           # another's own: no
        head("inv-3-20260915", D(8, 15), D(9, 15), InvoiceStatus.PAID, customer="cus-3"),
        head(invoice_id("cus-4", parse_period("2026-08")), D(8, 1), D(9, 1), customer="cus-4"),  # own, August: no
    ]
    assert blocking(heads, SEP) == {"cus-1": ("inv-1-20260920", "inv-1-20261020"), "cus-3": ("inv-3-20260915",)}
    assert blocking(heads, parse_period("2026-11")) == {}


def test_the_runs_own_invoice_of_another_month_overlapping_would_block():
    """Only the own invoice *of the period* is exempt: an id of the run's form for the month is not a licence
    for any other invoice of the customer that covers the same time."""
    august_id = invoice_id("cus-1", parse_period("2026-08"))
    assert blocking([head(august_id, D(8, 1), D(9, 2))], SEP) == {"cus-1": (august_id,)}
