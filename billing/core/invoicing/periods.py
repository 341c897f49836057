"""Billing periods of the invoice run: calendar months (UTC), named ``YYYY-MM``.

Invoice ids are deterministic, ``inv-<customer id>-<YYYYMM>``, so a re-run of a period finds the
invoices it wrote before instead of adding new ones (one live invoice per customer and period: a
void one may be re-billed as ``<id>-r1``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from billing.core.invoicing.errors import PeriodError
from billing.core.pricing.proration import Period, month_period

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
_MAX_ID = 128


def parse_period(text: str) -> Period:
    """The calendar month ``YYYY-MM`` as a UTC :class:`Period`."""
    match = _PERIOD.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise PeriodError(f"period {text!r} is not a month like 2024-03 (YYYY-MM)")
    return month_period(datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC))


def label(period: Period) -> str:
    """``2024-03`` for the period starting 2024-03-01."""
    return f"{period.start:%Y-%m}"


def closed_period(text: str, now: datetime) -> Period:
    """The month ``text``, which must have ended by ``now`` (the invoice run bills closed months)."""
    period = parse_period(text)
    if period.start > now:
        raise PeriodError(f"period {text} is in the future; only months that have ended can be invoiced")
    if period.end > now:
        raise PeriodError(
            f"period {text} is still open (it ends {period.end:%Y-%m-%d %H:%M} UTC); "
            "see its running total with `billing invoice preview --customer ID`"
        )
    return period


def invoice_id(customer_id: str, period: Period) -> str:
    """The id of the invoice of ``customer_id`` for ``period`` (the same on every run)."""
    candidate = f"inv-{customer_id}-{period.start:%Y%m}"
    if len(candidate) <= _MAX_ID:
        return candidate
    digest = hashlib.sha256(customer_id.encode()).hexdigest()[:40]
    return f"inv-{digest}-{period.start:%Y%m}"


def of_period(invoice: str, customer_id: str, period: Period) -> bool:
    """Whether ``invoice`` is the engine's invoice of ``customer_id`` for ``period`` or a re-bill of it
    (``<id>-r1``, ``<id>-r2``, ...; :mod:`~billing.core.invoicing.lifecycle`)."""
    first = invoice_id(customer_id, period)
    return invoice == first or (invoice.startswith(f"{first}-r") and invoice[len(first) + 2:].isdigit())
