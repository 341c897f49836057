"""Sequential, gap-free document numbers of one issuer (pure).

Ids (``inv-<customer>-<YYYYMM>``) stay stable so runs are idempotent; the *number* a finance user
quotes is given only when an invoice is finalized (credit notes are numbered when issued):
``<series>-000001``, ``<series>-000002``, ... for invoices and ``<series>-CN-000001``, ... for credit
notes. The next number is one more than the highest ever recorded in the series, so a number is
never reused, also when its invoice is voided later. Why there are no gaps: a run numbers the
documents it finalizes in a fixed order (by customer id) and records them in one insert per table,
so a run that crashes before that insert recorded none of them, and its re-run gives the same
numbers to the same documents. One issuer's numbers are assigned by one process at a time (one
invoice run or lifecycle command).
"""

from __future__ import annotations

from collections.abc import Iterator

DIGITS = 6


def credit_series(series: str) -> str:
    """The credit-note series of the invoice series ``series``."""
    return f"{series}-CN"


def numbers(series: str, last: int) -> Iterator[str]:
    """The numbers after ``last`` in ``series``: ``INV-000043``, ``INV-000044``, ..."""
    sequence = last
    while True:
        sequence += 1
        yield f"{series}-{sequence:0{DIGITS}d}"
