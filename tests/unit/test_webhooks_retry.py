"""The retry schedule: exponential, capped, shortened by at most the jitter share, dead after the last attempt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.webhooks.retry import Backoff

policies = st.builds(
    lambda base, factor, jitter, attempts: Backoff(base, base * factor, jitter, attempts),
    st.floats(min_value=0.001, max_value=60), st.floats(min_value=1, max_value=10_000),
    st.floats(min_value=0, max_value=0.99), st.integers(min_value=1, max_value=30))
draws = st.floats(min_value=0, max_value=1, exclude_max=True)


def test_default_like_schedule():
    policy = Backoff(base_s=2, max_s=600, jitter=0.25, max_attempts=8)
    assert [policy.nominal(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    assert [policy.delay(n, 0) for n in (1, 2, 3)] == [2, 4, 8]
    assert policy.delay(3, 0.5) == 8 * (1 - 0.25 * 0.5)
    assert [policy.exhausted(n) for n in (1, 7, 8, 9)] == [False, False, True, True]


@given(policies, st.integers(min_value=1, max_value=200), draws)
def test_a_delay_is_its_nominal_pause_shortened_by_at_most_the_jitter(policy, attempt, draw):
    nominal = policy.nominal(attempt)
    assert policy.base_s <= nominal <= policy.max_s
    assert nominal * (1 - policy.jitter) <= policy.delay(attempt, draw) <= nominal


@given(policies, st.integers(min_value=1, max_value=200))
def test_nominal_pauses_double_until_the_cap(policy, attempt):
    now, after = policy.nominal(attempt), policy.nominal(attempt + 1)
    assert after == min(policy.max_s, 2 * now) or now == policy.max_s == after


@given(policies)
def test_exactly_max_attempts_are_made(policy):
    attempts = next(n for n in range(1, 100) if policy.exhausted(n))
    assert attempts == policy.max_attempts


def test_bad_policies_and_arguments_are_refused():
    for args in ((0, 1, 0, 1), (2, 1, 0, 1), (1, 2, 1, 1), (1, 2, 0, 0)):
        with pytest.raises(ValueError, match="backoff needs"):
            Backoff(*args)
    policy = Backoff(1, 2, 0.1, 3)
    with pytest.raises(ValueError, match="count from 1"):
        policy.nominal(0)
    with pytest.raises(ValueError, match="draw"):
        policy.delay(1, 1.0)
