"""The window of `billing alerts scan`: whole hours up to the last complete one, cut into months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.alerts.scan import months
from billing.cli.alerts_cmds import _window
from billing.core.errors import ConfigError
from billing.core.pricing.proration import Period

NOW = datetime(2026, 12, 7, 12, 40, 5, tzinfo=UTC)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_default_window_is_the_month_so_far_in_complete_hours():
    assert _window(None, None, None, NOW) == Period(at(2026, 12, 1), at(2026, 12, 7, 12))
    assert _window(None, None, None, at(2026, 12, 1, 0, 30)) == Period(at(2026, 11, 1), at(2026, 12, 1))


def test_given_bounds_are_floored_to_hours_and_never_past_now():
    assert _window("2026-11-23T05:45:00Z", "2026-11-30", None, NOW) == Period(at(2026, 11, 23, 5), at(2026, 11, 30))
    assert _window("2026-12-07T02:00:00+02:00", "2027-01-01", None, NOW) == Period(at(2026, 12, 7), at(2026, 12, 7, 12))
    assert _window(None, None, "2026-10", NOW) == Period(at(2026, 10, 1), at(2026, 11, 1))
    assert _window(None, None, "2026-12", NOW) == Period(at(2026, 12, 1), at(2026, 12, 7, 12))


@pytest.mark.parametrize(("since", "until", "period", "message"), [
    ("2026-11-30", "2026-11-23", None, "holds no complete hour"),
    ("2026-12-07T12:10:00Z", None, None, "holds no complete hour"),
    (None, None, "2027-01", "holds no complete hour"),
    ("2026-11-01", None, "2026-11", "either --period or --since/--until"),
    ("yesterday", None, None, "--since must be an ISO 8601 time"),
    (None, None, "2026-13", "is not a month like"),
])
def test_bad_windows_are_refused(since, until, period, message):
    with pytest.raises(ConfigError, match=message):
        _window(since, until, period, NOW)


def test_months_cut_the_window_at_month_ends():
    window = Period(at(2026, 10, 20, 5), at(2026, 12, 3))
    assert list(months(window)) == [Period(at(2026, 10, 1), at(2026, 11, 1)), Period(at(2026, 11, 1), at(2026, 12, 1)),
                                    Period(at(2026, 12, 1), at(2026, 12, 3))]
    assert list(months(Period(at(2026, 11, 2), at(2026, 11, 3)))) == [Period(at(2026, 11, 1), at(2026, 11, 3))]
