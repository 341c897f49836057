"""The sink's split of a batch into inserts that each touch few enough monthly partitions (no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from streams.sink import split_by_month

UTC = UTC


def _months(part: list[list]) -> set[tuple[int, int]]:
    return {(t.astimezone(UTC).year, t.astimezone(UTC).month) for _, t in part}


@given(st.lists(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
                max_size=300),
       st.integers(min_value=1, max_value=120))
def test_every_row_lands_in_exactly_one_part_of_at_most_limit_months(times: list[datetime], limit: int) -> None:
    rows = [[i, t] for i, t in enumerate(times)]
    parts = split_by_month(rows, 1, limit)
    assert sorted(row[0] for part in parts for row in part) == list(range(len(rows)))
    assert all(len(_months(part)) <= limit for part in parts)
    assert len(parts) == max(1, -(-len(_months(rows)) // limit))


def test_months_are_counted_in_utc_and_dates_count_too() -> None:
    minus5 = timezone(timedelta(hours=-5))
    rows = [[0, datetime(2026, 1, 31, 21, tzinfo=minus5)], [1, datetime(2026, 2, 1, 2, tzinfo=UTC)]]
    assert split_by_month(rows, 1, 1) == [rows]  # both in UTC February
    dated = [[0, date(2026, 1, 1)], [1, date(2026, 2, 1)], [2, date(2026, 1, 9)]]
    assert split_by_month(dated, 1, 1) == [[dated[0], dated[2]], [dated[1]]]


def test_a_batch_within_the_limit_is_one_insert_unchanged() -> None:
    rows = [[i, datetime(2026, 1 + i % 12, 1, tzinfo=UTC)] for i in range(50)]
    assert split_by_month(rows, 1, 100) == [rows]
    assert split_by_month(rows, 1, 0) == [rows]  # 0: the server sets no limit
