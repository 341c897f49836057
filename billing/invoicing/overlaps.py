"""Time already invoiced elsewhere: the invoice run never bills a customer twice for the same time.

Other sources write invoices too (the simulator publishes anniversary-period invoices, ids
``inv-<n>-<YYYYMMDD>``, which the stream worker stores). Before billing a month, the run looks for
each customer's invoices that are not void, are not the run's own invoice of that customer and
month (:func:`~billing.core.invoicing.periods.invoice_id`), and whose service period overlaps the month;
such a customer is skipped for the month and reported with those invoice ids.

Periods are half-open, ``[start, end)``: an invoice ending exactly when the month starts (or
starting exactly when it ends) shares no time with it. A *partial* overlap also skips the whole
month. The other invoice already charged the subscription fee and the usage of the shared time by
rules the run cannot see (its own periods, proration and usage windows), so billing "the rest of
the month" would have to guess what was charged and could still bill some of the time twice; a
customer billed by another source is left to that source, visibly, instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from billing.core.contracts import InvoiceStatus
from billing.core.invoicing.periods import invoice_id
from billing.core.pricing.proration import Period
from billing.invoicing.store import InvoiceHead


def overlaps(first: Period, second: Period) -> bool:
    """Whether two half-open periods share any time (touching ends share none)."""
    return first.start < second.end and second.start < first.end


def blocking(heads: Iterable[InvoiceHead], period: Period) -> dict[str, tuple[str, ...]]:
    """``customer id -> ids of the invoices that already bill some of period`` (sorted), from ``heads``:
    the customer's invoices that are not void, not the run's own invoice of ``period``, and overlap it."""
    found: dict[str, list[str]] = defaultdict(list)
    for head in heads:
        if (head.status is not InvoiceStatus.VOID and head.id != invoice_id(head.customer_id, period)
                and overlaps(Period(head.period_start, head.period_end), period)):
            found[head.customer_id].append(head.id)
    return {customer: tuple(sorted(ids)) for customer, ids in sorted(found.items())}
