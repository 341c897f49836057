"""The payment lifecycle state machine of the stream worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.core.contracts import FailureReason, PaymentMethod, PaymentStatus, PaymentTransaction
from streams.payments import PaymentState

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
S = PaymentStatus


def event(sequence: int, status: PaymentStatus, attempt: int = 1, minutes: int = 0, **extra) -> PaymentTransaction:
    initiated = T0 + timedelta(minutes=minutes)
    completed = None if status is S.INITIATED else initiated + timedelta(seconds=30)
    if status is S.FAILED:
        extra.setdefault("failure_reason", FailureReason.INSUFFICIENT_FUNDS)
    return PaymentTransaction(event_id=f"tx-{sequence}", id="tx", invoice_id="inv", customer_id="c1",
                              method=PaymentMethod.CARD, amount=Decimal("100.00"), currency="USD", status=status,
                              attempt=attempt, sequence=sequence, initiated_at=initiated, completed_at=completed,
                              event_time=completed or initiated, **extra)


def replay(events: list[PaymentTransaction]) -> tuple[PaymentState, list[str]]:
    state, anomalies = PaymentState.start(events[0]), []
    for e in events:
        _, anomaly = state.apply(e)
        if anomaly:
            anomalies.append(anomaly)
    return state, anomalies


def test_failed_then_retried_then_refunded():
    state, anomalies = replay([
        event(1, S.INITIATED), event(2, S.FAILED), event(3, S.INITIATED, attempt=2, minutes=60),
        event(4, S.SUCCEEDED, attempt=2, minutes=60), event(5, S.REFUNDED, attempt=2, minutes=60,
                                                           refunded_amount=Decimal("25.00")),
    ])
    assert anomalies == []
    assert (state.status, state.attempts, state.failures, state.last_failure) == (S.REFUNDED, 2, 1, "insufficient_funds")
    assert state.status_path == "initiated>failed>initiated>succeeded>refunded"
    assert state.first_initiated_at == T0 and state.succeeded_at == T0 + timedelta(minutes=60, seconds=30)
    assert state.processing_seconds == 30.0 and state.refunded_amount == Decimal("25.00")
    row = state.row(T0)
    assert row[-2] == 5  # version = sequence of the last applied event


def test_replayed_and_duplicate_events_change_nothing():
    events = [event(1, S.INITIATED), event(2, S.SUCCEEDED)]
    state, _ = replay(events)
    before = state.encode()
    assert state.apply(events[0]) == (False, None) and state.apply(events[1]) == (False, None)
    assert state.encode() == before


def test_unexpected_transitions_and_gaps_are_applied_and_reported():
    _, anomalies = replay([event(1, S.INITIATED), event(2, S.REFUNDED, refunded_amount=Decimal(1))])
    assert anomalies == ["unexpected transition initiated -> refunded"]
    state, anomalies = replay([event(1, S.INITIATED), event(3, S.SUCCEEDED)])
    assert anomalies == ["sequence gap: 1 -> 3"] and state.status is S.SUCCEEDED


def test_disputes_are_flagged_and_state_round_trips():
    state, _ = replay([event(1, S.INITIATED), event(2, S.SUCCEEDED), event(3, S.DISPUTED)])
    assert state.disputed and state.status is S.DISPUTED
    assert PaymentState.decode(state.encode()) == state


@given(st.lists(st.booleans(), min_size=1, max_size=6), st.integers(min_value=0, max_value=20))
def test_any_retry_sequence_counts_attempts_and_failures(outcomes, replayed):
    """outcomes: True = the attempt succeeds (and ends the transaction), False = it fails."""
    events, sequence = [], 0
    for attempt, succeeded in enumerate(outcomes, start=1):
        sequence += 1
        events.append(event(sequence, S.INITIATED, attempt=attempt, minutes=attempt * 10))
        sequence += 1
        events.append(event(sequence, S.SUCCEEDED if succeeded else S.FAILED, attempt=attempt, minutes=attempt * 10))
        if succeeded:
            break
    state, anomalies = replay(events + events[: replayed % (len(events) + 1)])
    attempts = len(events) // 2
    assert anomalies == []
    assert state.attempts == attempts and state.failures == sum(1 for e in events if e.status is S.FAILED)
    assert state.status is events[-1].status and state.sequence == len(events)
