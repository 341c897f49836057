"""Reconciliation: recompute usage windows from the raw, id-keyed facts and compare them with the
rollups the stream worker wrote (`billing reconcile`).

``usage_events FINAL`` holds every validated, deduplicated event exactly once, so aggregating it per
customer x meter x window x group key gives the true value of every rollup. SUM, COUNT and MAX are
plain SQL aggregates; UNIQUE_COUNT counts the distinct raw values (the ``value`` column) and
LATEST takes the value of the last event ordered by (event_time, event_id), matching
:class:`billing.core.meters.Accumulator`. A fix writes the recomputed row with a version above the
current one, so the ReplacingMergeTree keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from billing.core.meters import QUANTITY_FIELD, Aggregation, Meter, MeterSet
from billing.settings import Settings

WindowId = tuple[str, str, int, int, str]
"""(customer_id, meter, window_seconds, window_start epoch s, group_key)."""


def value_expression(meter: Meter) -> str:
    """SQL aggregate over ``usage_events`` that computes the meter's value of one window."""
    numeric = "quantity" if meter.value_field == QUANTITY_FIELD else "toDecimal128OrZero(value, 9)"
    raw = "quantity" if meter.value_field == QUANTITY_FIELD else "value"
    return {
        Aggregation.SUM: f"sum({numeric})",
        Aggregation.MAX: f"max({numeric})",
        Aggregation.COUNT: "toDecimal128(count(), 9)",
        Aggregation.UNIQUE_COUNT: f"toDecimal128(uniqExact({raw}), 9)",
        Aggregation.LATEST: f"argMax({numeric}, (event_time, event_id))",
    }[meter.aggregation]


@dataclass(frozen=True)
class WindowValue:
    """Value, event count and dimensions of one window; version/closed for rollup rows."""

    value: Decimal
    events: int
    dimensions: dict
    version: int = 0
    closed: int = 0


def expected_windows(ch: Client, settings: Settings, meters: MeterSet, seconds: int,
                     conditions: Iterable[str] = (), parameters: dict | None = None) -> dict[WindowId, WindowValue]:
    """True window values computed from ``usage_events FINAL`` (optionally filtered)."""
    db = settings.clickhouse_database
    where = " AND ".join(["meter = {meter:String}", *conditions])
    result: dict[WindowId, WindowValue] = {}
    for meter in meters:
        sql = (
            f"SELECT customer_id, intDiv(toUnixTimestamp(event_time), {seconds}) * {seconds} AS ws, group_key, "
            f"{value_expression(meter)} AS v, count() AS n, any(dimensions) AS d "
            f"FROM {db}.usage_events FINAL WHERE {where} GROUP BY customer_id, ws, group_key"
        )
        for customer, start, gkey, value, events, dims in ch.query(
                sql, parameters={**(parameters or {}), "meter": meter.name}).result_rows:
            result[(customer, meter.name, seconds, int(start), gkey)] = WindowValue(Decimal(value), int(events), dims)
    return result


def current_rollups(ch: Client, settings: Settings, seconds: int, conditions: Iterable[str] = (),
                    parameters: dict | None = None) -> dict[WindowId, WindowValue]:
    """Rollups as the warehouse holds them (``usage_rollups FINAL``)."""
    where = " AND ".join([f"window_seconds = {seconds}", *conditions])
    sql = (f"SELECT customer_id, meter, toUnixTimestamp(window_start), group_key, value, event_count, dimensions, "
           f"version, closed FROM {settings.clickhouse_database}.usage_rollups FINAL WHERE {where}")
    return {
        (customer, meter, seconds, int(start), gkey): WindowValue(Decimal(value), int(events), dims, int(version),
                                                                   int(closed))
        for customer, meter, start, gkey, value, events, dims, version, closed in ch.query(
            sql, parameters=parameters or {}).result_rows
    }


def rollup_row(window: WindowId, meter: Meter, value: WindowValue, version: int, closed: int) -> list:
    """A ``usage_rollups`` row (columns of ``facts.COLUMNS["usage_rollups"]``)."""
    customer, name, seconds, start, gkey = window
    return [customer, name, seconds, datetime.fromtimestamp(start, UTC), gkey, value.dimensions,
            meter.aggregation.value, value.value, value.events, version, closed, datetime.now(UTC)]


def recompute_rows(ch: Client, settings: Settings, meters: MeterSet, windows: Iterable[WindowId]) -> list[list]:
    """Rows that replace the given windows with their values recomputed from the raw facts (used by
    the worker for corrections to windows whose state has expired).

    Two queries per window length and meter, whatever the number of windows (one pair of queries
    per window stalled a worker replaying old data for minutes per batch)."""
    wanted = set(windows)
    rows = []
    for seconds in sorted({window[2] for window in wanted}):
        group = sorted(window for window in wanted if window[2] == seconds)
        starts = [window[3] for window in group]
        params = {
            "customers": sorted({window[0] for window in group}),
            "windows": [(customer, name, gkey, start) for customer, name, _, start, gkey in group],
            "start": min(starts), "end": max(starts) + seconds,
        }
        span = ["customer_id IN {customers:Array(String)}"]
        expected = expected_windows(ch, settings, MeterSet(meters[name] for name in sorted({w[1] for w in group})),
                                    seconds, [*span, "event_time >= toDateTime({start:UInt32}, 'UTC')",
                                              "event_time < toDateTime({end:UInt32}, 'UTC')",
                                              f"(customer_id, meter, group_key, toUInt32(intDiv(toUnixTimestamp(event_time), "
                                              f"{seconds}) * {seconds})) IN {{windows:Array(Tuple(String, String, String, UInt32))}}"],
                                    params)
        current = current_rollups(ch, settings, seconds, [*span, "window_start >= toDateTime({start:UInt32}, 'UTC')",
                                                          "window_start < toDateTime({end:UInt32}, 'UTC')",
                                                          "(customer_id, meter, group_key, toUInt32(toUnixTimestamp(window_start))) "
                                                          "IN {windows:Array(Tuple(String, String, String, UInt32))}"], params)
        for window in group:
            value = expected.get(window)
            if value is not None:
                have = current.get(window)
                rows.append(rollup_row(window, meters[window[1]], value, (have.version if have else 0) + 1, 1))
    return rows


@dataclass(frozen=True)
class Difference:
    """A rollup that differs from the raw facts."""

    window: WindowId
    expected: WindowValue | None
    actual: WindowValue | None

    @property
    def kind(self) -> str:
        if self.actual is None:
            return "missing"
        if self.expected is None:
            return "extra"
        return "different"


def reconcile(ch: Client, settings: Settings, meters: MeterSet, sizes: Iterable[int],
              since: datetime | None = None, until: datetime | None = None,
              customers: Iterable[str] = ()) -> tuple[int, list[Difference]]:
    """Compare every rollup in scope with its recomputed value: (windows checked, differences)."""
    conditions, rconditions, params = [], [], {}
    if since is not None:
        params["since"] = int(since.timestamp())
        conditions.append("event_time >= toDateTime({since:UInt32}, 'UTC')")
        rconditions.append("window_start >= toDateTime({since:UInt32}, 'UTC')")
    if until is not None:
        params["until"] = int(until.timestamp())
        conditions.append("event_time < toDateTime({until:UInt32}, 'UTC')")
        rconditions.append("window_start < toDateTime({until:UInt32}, 'UTC')")
    customers = list(customers)
    if customers:
        params["customers"] = customers
        conditions.append("customer_id IN {customers:Array(String)}")
        rconditions.append("customer_id IN {customers:Array(String)}")
    checked, differences = 0, []
    for seconds in sizes:
        expected = expected_windows(ch, settings, meters, seconds, conditions, params)
        actual = current_rollups(ch, settings, seconds, rconditions, params)
        for window in sorted(expected.keys() | actual.keys()):
            want, have = expected.get(window), actual.get(window)
            checked += 1
            if want is None and have is not None and have.value == 0 and have.events == 0:
                continue
            if want is None or have is None or want.value != have.value or want.events != have.events:
                differences.append(Difference(window, want, have))
    return checked, differences


def fix_rows(differences: Iterable[Difference], meters: MeterSet) -> list[list]:
    """Rows that correct ``differences`` (an extra rollup becomes an empty window)."""
    rows = []
    for diff in differences:
        meter = meters[diff.window[1]]
        value = diff.expected or WindowValue(Decimal(0), 0, diff.actual.dimensions)
        version = (diff.actual.version if diff.actual else 0) + 1
        closed = diff.actual.closed if diff.actual else 1
        rows.append(rollup_row(diff.window, meter, value, version, closed))
    return rows
