"""The payer simulator: payments of the engine's invoices, reproducible from the seed and the invoice id."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.contracts import Invoice, InvoiceStatus, LineItem, LineKind, PaymentStatus
from producers.payers import habits, settle

UTC = UTC
ISSUED = datetime(2026, 12, 1, 2, tzinfo=UTC)


def invoice(number: int, total: str = "120.00", code: str = "USD") -> Invoice:
    amount = Decimal(total)
    return Invoice(
        id=f"inv-cus-7-{number:06d}-202611", customer_id=f"cus-7-{number:06d}", period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=ISSUED.replace(hour=0), currency=code,
        line_items=(LineItem(kind=LineKind.SUBSCRIPTION, charge="starter.platform_fee", quantity=1, unit_price=amount, amount=amount),),
        subtotal=amount, total=amount, status=InvoiceStatus.FINALIZED, issued_at=ISSUED, due_at=ISSUED + timedelta(days=14),
        event_time=ISSUED,
    )


def test_same_seed_and_invoice_same_payments_another_seed_others():
    assert settle(invoice(1), 7) == settle(invoice(1), 7)
    outcomes = {settle(invoice(n), 7).events for n in range(40)}
    assert len(outcomes) >= 30
    assert [settle(invoice(n), 7) for n in range(40)] != [settle(invoice(n), 8) for n in range(40)]


def test_a_thousand_invoices_show_every_payer_behaviour():
    settled = [(inv, settle(inv, 3)) for inv in (invoice(n) for n in range(1000))]
    events = [e for _, s in settled for e in s.events]
    statuses = Counter(e.status for e in events)
    assert set(statuses) == set(PaymentStatus)
    assert {e.failure_reason.value for e in events if e.failure_reason} >= {"insufficient_funds", "do_not_honor", "network_error"}
    assert {e.method.value for e in events} >= {"card", "ach", "paypal"}
    never = [inv for inv, s in settled if not s.events]
    assert never and all(habits(3, inv.customer_id, "USD").never for inv in never)
    late = [(inv, s) for inv, s in settled if s.events and habits(3, inv.customer_id, "USD").late]
    assert late and all(s.events[0].initiated_at > inv.due_at for inv, s in late)
    prompt = [s for inv, s in settled if s.events and not habits(3, inv.customer_id, "USD").late]
    assert all(s.events[0].initiated_at <= ISSUED + timedelta(hours=72) for s in prompt)
    unpaid_after_retries = [s for _, s in settled if s.events and s.paid_at is None]
    assert unpaid_after_retries and all(s.events[-1].status is PaymentStatus.FAILED for s in unpaid_after_retries)
    assert max(e.attempt for e in events) == 4


@settings(max_examples=200)
@given(st.integers(0, 10_000), st.integers(0, 10**6), st.sampled_from(["USD", "EUR", "JPY", "INR"]))
def test_every_settlement_is_a_valid_lifecycle_after_the_invoice(seed, number, code):
    inv = invoice(number, "250" if code == "JPY" else "250.00", code)
    found = settle(inv, seed)
    assert [e.sequence for e in found.events] == list(range(1, len(found.events) + 1))
    assert all(e.invoice_id == inv.id and e.amount == inv.total and e.currency == code for e in found.events)
    assert all(e.event_time >= inv.issued_at for e in found.events)
    assert [e.event_time for e in found.events] == sorted(e.event_time for e in found.events)
    succeeded = [e for e in found.events if e.status is PaymentStatus.SUCCEEDED]
    assert len(succeeded) <= 1 and (found.paid_at == (succeeded[0].completed_at if succeeded else None))
    assert all(e.refunded_amount <= inv.total for e in found.events if e.refunded_amount is not None)


def test_nothing_is_paid_on_an_invoice_with_nothing_due():
    assert settle(invoice(5, "0.00"), 1).events == ()
