"""The usage-event hot path: plain dicts -> orjson bytes, no pydantic, no Faker per event.

Everything random comes from one ``random.Random`` seeded by the run seed, so a given seed and
sequence of batches always yields the same bytes. Customers are sampled by their Pareto weight
times the diurnal/weekly curve of their time zone; meters, quantities and endpoints are looked up
in tables of ``2**TABLE_BITS`` entries built once at start, indexed by 16-bit draws made in bulk
per batch; faults hit slots chosen by geometric gaps; injected usage anomalies (:mod:`producers.anomalies`)
scale the quantities of their customer x meter x hour. While generating, the exact ground truth is
folded in (see :class:`UsageTruth`): malformed records are excluded, duplicates counted once, late
events counted in the window of their own event time.
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import orjson

from billing.core.errors import ConfigError
from billing.core.meters import QUANTITY_FIELD, Aggregation, MeterSet
from producers.anomalies import InjectedAnomaly, eligible
from producers.customers import CustomerProfile
from producers.world import DIURNAL, ENDPOINTS, METER_PROFILES, WEEKLY

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
TABLE_BITS = 12
TABLE_MASK = (1 << TABLE_BITS) - 1
MALFORMED_KINDS = (
    "invalid_json", "missing_field", "negative_quantity", "unknown_meter", "future_timestamp", "naive_timestamp",
)
FUTURE_SHIFT = timedelta(days=36_500)
UNKNOWN_METER = "bogus_meter"
DUPLICATE_SPREAD = 500  # a duplicate is re-sent within the next N records
MINUTE_SECOND = tuple(f"{m:02d}:{sec:02d}" for m in range(60) for sec in range(60))
_DIMENSIONS_BY_METER = {
    "api_calls": ("region", "endpoint"),
    "storage_gb_hours": ("region", "tier"),
    "bandwidth_gb": ("region",),
    "compute_seconds": ("region", "tier"),
    "active_seats": ("region", "user_id"),
}


def us_of(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def datetime_of(us: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass(frozen=True)
class FaultRates:
    """Fault injection: probabilities per generated event and how late a late event is."""

    duplicate: float = 0.0
    late: float = 0.0
    malformed: float = 0.0
    lateness_s: float = 7200.0


@dataclass
class UsageTruth:
    """Exact expected results, folded in while generating.

    ``hours[hour_us][cell] = [value, events]`` with ``cell = customer_index * n_meters + meter_index``,
    where value is the meter's aggregation over the unique valid events of that hour, in fixed-point
    integers of the meter's scale for quantities (a set for UNIQUE_COUNT, ``(time_us, id, value)`` for
    LATEST). :attr:`hourly` and :attr:`daily_distinct` present it per customer, meter and window.
    """

    n_meters: int
    hours: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)  # (id, customer_index, meter_index, time_us)
    late: list = field(default_factory=list)  # (id, customer_index, meter_index, time_us, emitted_at_us)
    malformed: list = field(default_factory=list)  # (id, customer_index, reason)
    records: int = 0

    @property
    def hourly(self) -> dict[tuple[int, int, int], list]:
        """``{(customer_index, meter_index, hour_us): [value, events]}``."""
        return {(*divmod(cell, self.n_meters), hour): bucket
                for hour, cells in self.hours.items() for cell, bucket in cells.items()}

    @property
    def daily_distinct(self) -> dict[tuple[int, int, int], set]:
        """UNIQUE_COUNT values per ``(customer_index, meter_index, day_us)`` (distinct counts do not add up)."""
        days: dict[tuple[int, int, int], set] = {}
        for hour, cells in self.hours.items():
            for cell, (value, _) in cells.items():
                if isinstance(value, set):
                    days.setdefault((*divmod(cell, self.n_meters), hour - hour % DAY_US), set()).update(value)
        return days


class UsageGenerator:
    """Generates batches of usage records ``(key, value)`` for a fixed set of customers."""

    def __init__(self, customers: list[CustomerProfile], meters: MeterSet, seed: int,
                 faults: FaultRates = FaultRates(), source: str = "billing-simulator",
                 service_ends: Sequence[int | None] = ()):
        self.rng = random.Random(f"usage:{seed}")
        self.meters = [m for m in meters if m.name in METER_PROFILES]
        if not self.meters:
            raise ConfigError(
                f"none of the configured meters ({', '.join(meters.names)}) can be simulated; "
                f"the simulator knows {', '.join(METER_PROFILES)}"
            )
        for meter in self.meters:
            if meter.value_field != QUANTITY_FIELD and meter.value_field not in _DIMENSIONS_BY_METER[meter.name]:
                raise ConfigError(f"meter {meter.name}: the simulator cannot produce data.{meter.value_field}")
        self.customers = customers
        # per customer, when its service ended (epoch us; None = still subscribed): no usage from that hour on
        self.service_ends = list(service_ends) or [None] * len(customers)
        self.faults = faults
        self.source = source
        self.id_prefix = f"evt-{seed}-"
        self.next_id = 0
        self.truth = UsageTruth(len(self.meters))
        self.anomalies: list[InjectedAnomaly] = []
        self._factors: dict[int, dict[int, float]] = {}  # hour_us -> cell -> quantity factor
        self._hour_prefix: dict[int, str] = {}
        self._prepare_tables()

    def anomaly_cells(self, events_per_hour: float) -> list[tuple[int, int, float]]:
        """The ``(customer index, meter index, weight)`` cells anomalies may be injected into, at
        ``events_per_hour`` usage events in an average hour."""
        return eligible(self.meter_agg, self.value_is_quantity, [c.weight for c in self.customers], self.meter_of,
                        [end is None for end in self.service_ends], events_per_hour)

    def inject(self, anomalies: list[InjectedAnomaly]) -> None:
        """Scale the quantities of each anomaly's customer x meter x hour in the batches generated from now on."""
        self.anomalies = list(anomalies)
        self._factors = {}
        n_meters = len(self.meters)
        for anomaly in anomalies:
            cell = anomaly.customer_index * n_meters + anomaly.meter_index
            self._factors.setdefault(anomaly.hour_us, {})[cell] = anomaly.factor

    # ------------------------------------------------------------------ setup (not hot)

    def _prepare_tables(self) -> None:
        rng = self.rng
        size = 1 << TABLE_BITS
        self.meter_names = [m.name for m in self.meters]
        # scale -1 marks a meter whose events always carry quantity 1 (one event per active user)
        self.meter_scale = [-1 if m.name == "active_seats" else METER_PROFILES[m.name].scale for m in self.meters]
        self.meter_agg = [m.aggregation for m in self.meters]
        self.value_is_quantity = [m.value_field == QUANTITY_FIELD for m in self.meters]
        self.tables = []
        for meter in self.meters:
            profile = METER_PROFILES[meter.name]
            self.tables.append([rng.lognormvariate(profile.mu, profile.sigma) for _ in range(size)])
        shares = [METER_PROFILES[m.name].share for m in self.meters]
        # per customer: table slot -> meter index, in the customer's own mix of the meters
        self.meter_of = []
        for _ in self.customers:
            mix = [share * rng.lognormvariate(0, 0.5) for share in shares]
            self.meter_of.append(bytes(_spread(list(range(len(self.meters))), mix, size)))
        self.endpoint_table = _spread([e for e, _ in ENDPOINTS], [w for _, w in ENDPOINTS], size)
        self.zone_offsets = sorted({c.market.utc_offset_h for c in self.customers})
        zone_of = {offset: z for z, offset in enumerate(self.zone_offsets)}
        self.customer_zone = [zone_of[c.market.utc_offset_h] for c in self.customers]
        self._cum_cache: tuple[int, list[float]] = (-1, [])
        self._prepare_cells()

    def _prepare_cells(self) -> None:
        """Per customer and meter (a cell), what the hot path needs: the event JSON with every constant
        filled in and ``%`` slots for the id number, the time (hour prefix, minute:second, microseconds),
        the quantity and the one per-event dimension (endpoint or user id), the quantity table and
        factor, and how the truth value is taken."""
        dynamic_kind = {"endpoint": 1, "user_id": 2}
        self.cells = []
        for customer in self.customers:
            static = {"region": customer.market.cloud_region, "tier": customer.tier}
            for mi, meter in enumerate(self.meters):
                dims = _DIMENSIONS_BY_METER[meter.name]
                moving = next((d for d in dims if d in dynamic_kind), None)
                data = {"quantity": "\0Q"}
                for dim in dims:
                    data[dim] = static.get(dim, "\0X")
                event = {
                    "schema_version": 1, "specversion": "1.0", "id": "\0I", "source": self.source,
                    "type": meter.name, "subject": customer.id, "time": "\0T", "data": data,
                }
                text = orjson.dumps(event).decode().replace("%", "%%")
                template = (text.replace("\\u0000I", f"{self.id_prefix}%010d", 1)
                            .replace("\\u0000T", "%s%s.%06dZ", 1).replace("\\u0000Q", "%s", 1)
                            .replace("\\u0000X", "%s", 1))
                scale = self.meter_scale[mi]
                quantity_kind = 0 if scale < 0 else (1 if scale == 0 else 2)
                value_kind = 1 if meter.value_field == QUANTITY_FIELD else (2 if meter.value_field == moving else 0)
                self.cells.append((
                    template, customer.id.encode(), self.tables[mi], customer.usage_multiplier * 10 ** max(scale, 0),
                    quantity_kind, dynamic_kind.get(moving, 0), f"{customer.id}-u", customer.seats, value_kind,
                    static.get(meter.value_field), meter.aggregation,
                ))

    def _zone_curve(self, hour_us: int) -> list[float]:
        """Diurnal x weekly traffic factor of each time zone group in the UTC hour starting at ``hour_us``."""
        hour = hour_us // HOUR_US
        factors = []
        for offset in self.zone_offsets:
            local = hour + offset
            weekday = (local // 24 + 3) % 7  # 1970-01-01 was a Thursday
            factors.append(DIURNAL[local % 24] * WEEKLY[weekday])
        return factors

    def hour_weight(self, hour_us: int) -> float:
        """Relative traffic of the UTC hour starting at ``hour_us`` (customers still subscribed)."""
        return self._customer_cum_weights(hour_us)[-1]

    def _customer_cum_weights(self, hour_us: int) -> list[float]:
        """Cumulative traffic weights of the customers, by index, in the UTC hour of ``hour_us`` (cached);
        a customer whose service ended by the start of the hour weighs 0."""
        hour = hour_us // HOUR_US
        if self._cum_cache[0] != hour:
            curve = self._zone_curve(hour_us)
            start = hour * HOUR_US
            self._cum_cache = (hour, list(accumulate(
                c.weight * curve[z] if end is None or start < end else 0.0
                for c, z, end in zip(self.customers, self.customer_zone, self.service_ends, strict=True))))
        return self._cum_cache[1]

    def _hour_prefix_of(self, hour_us: int) -> str:
        """``YYYY-MM-DDTHH:`` of the hour starting at ``hour_us`` (cached)."""
        prefix = self._hour_prefix.get(hour_us)
        if prefix is None:
            if len(self._hour_prefix) > 4096:
                self._hour_prefix.clear()
            prefix = datetime_of(hour_us).strftime("%Y-%m-%dT%H:")
            self._hour_prefix[hour_us] = prefix
        return prefix

    def _time_text(self, t_us: int) -> str:
        hour_us = t_us - t_us % HOUR_US
        rest = t_us - hour_us
        return f"{self._hour_prefix_of(hour_us)}{MINUTE_SECOND[rest // 1_000_000]}.{rest % 1_000_000:06d}Z"

    # ------------------------------------------------------------------ hot path

    def _uniform16(self, count: int) -> array:
        """``count`` uniform draws in ``[0, 65536)``, made in one call (little-endian on every platform)."""
        draws = array("H", self.rng.randbytes(2 * count))
        if sys.byteorder == "big":
            draws.byteswap()
        return draws

    def _slots(self, probability: float, count: int) -> list[int]:
        """The slots of ``range(count)`` that each hit with ``probability``, via geometric gaps."""
        if probability <= 0:
            return []
        if probability >= 1:
            return list(range(count))
        random_, log_miss = self.rng.random, math.log(1.0 - probability)
        hits, slot = [], -1
        while True:
            slot += 1 + int(math.log(1.0 - random_()) / log_miss)
            if slot >= count:
                return hits
            hits.append(slot)

    def batch(self, window_start_us: int, window_us: int, count: int) -> list[tuple[bytes, bytes]]:
        """``count`` records with event times spread over ``[window_start, +window_us)``, in time order
        (late events excepted), including injected duplicates and malformed records."""
        if count <= 0:
            return []
        rng = self.rng
        weights = self._customer_cum_weights(window_start_us)
        if not weights[-1]:
            raise ConfigError(f"no simulated customer is subscribed at {datetime_of(window_start_us).isoformat()}; "
                              "simulate more customers or another time window")
        picked = rng.choices(range(len(self.customers)), cum_weights=weights, k=count)
        times = sorted(rng.choices(range(window_start_us, window_start_us + window_us), k=count))
        meter_draws, quantity_draws, extra_draws = (self._uniform16(count) for _ in range(3))
        faults = self.faults
        lateness_us = int(faults.lateness_s * 1_000_000)
        late = self._slots(faults.late, count)
        emitted = {slot: times[slot] for slot in late}
        for slot in late:
            times[slot] -= lateness_us + 1 + int(rng.random() * lateness_us)
        malformed = self._slots(faults.malformed, count)
        bad = set(malformed)
        duplicated = [slot for slot in self._slots(faults.duplicate, count) if slot not in bad]

        first_id = self.next_id
        self.next_id += count
        prefix = self.id_prefix
        bad_ids = {first_id + slot for slot in malformed}
        hours = self.truth.hours
        meter_of, cells, n_meters = self.meter_of, self.cells, len(self.meters)
        endpoints = self.endpoint_table
        hour_prefix_of = self._hour_prefix_of
        hour_lo = hour_hi = 0
        hour_prefix = ""
        hour_cells: dict = {}
        factors = self._factors
        hour_factors = None
        SUM, UNIQUE, MAX, LATEST = (Aggregation.SUM, Aggregation.UNIQUE_COUNT, Aggregation.MAX,
                                    Aggregation.LATEST)
        out: list[tuple[bytes, bytes]] = []
        append = out.append
        for n, ci, md, qd, xd, t_us in zip(range(first_id, first_id + count), picked, meter_draws, quantity_draws,
                                           extra_draws, times, strict=True):
            cell = ci * n_meters + meter_of[ci][md & TABLE_MASK]
            (template, key, table, factor, quantity_kind, dynamic, user_prefix, seats, value_kind, static,
             agg) = cells[cell]
            if not hour_lo <= t_us < hour_hi:
                hour_lo = t_us - t_us % HOUR_US
                hour_hi = hour_lo + HOUR_US
                hour_prefix = hour_prefix_of(hour_lo)
                hour_cells = hours.get(hour_lo)
                if hour_cells is None:
                    hours[hour_lo] = hour_cells = {}
                hour_factors = factors.get(hour_lo)
            rest = t_us - hour_lo
            if quantity_kind == 1:
                q = int(table[qd & TABLE_MASK] * factor) + 1
            elif quantity_kind == 2:
                q = int(table[qd & TABLE_MASK] * factor)
            else:
                q = 1
            if hour_factors is not None and cell in hour_factors:
                q = int(q * hour_factors[cell])
            quantity = f"{q // 1000}.{q % 1000:03d}" if quantity_kind == 2 else str(q)
            second, micros = MINUTE_SECOND[rest // 1_000_000], rest % 1_000_000
            if dynamic == 1:
                extra = endpoints[xd & TABLE_MASK]
                raw = template % (n, hour_prefix, second, micros, quantity, extra)
            elif dynamic == 2:
                extra = f"{user_prefix}{xd * seats >> 16}"
                raw = template % (n, hour_prefix, second, micros, quantity, extra)
            else:
                extra = None
                raw = template % (n, hour_prefix, second, micros, quantity)
            append((key, raw.encode()))
            if n in bad_ids:
                continue
            # fold into the ground truth
            value = q if value_kind == 1 else (extra if value_kind == 2 else static)
            bucket = hour_cells.get(cell)
            if bucket is None:
                hour_cells[cell] = bucket = [0 if agg is SUM else (set() if agg is UNIQUE else None), 0]
            bucket[1] += 1
            if agg is SUM:
                bucket[0] += value
            elif agg is UNIQUE:
                bucket[0].add(value)
            elif agg is MAX:
                if bucket[0] is None or value > bucket[0]:
                    bucket[0] = value
            elif agg is LATEST:
                candidate = (t_us, f"{prefix}{n:010d}", value)
                if bucket[0] is None or candidate[:2] > bucket[0][:2]:
                    bucket[0] = candidate
        return self._inject(out, picked, meter_draws, times, emitted, malformed, duplicated, first_id)

    def _inject(self, out: list, picked: list[int], meter_draws: array, times: list[int], emitted: dict[int, int],
                malformed: list[int], duplicated: list[int], first_id: int) -> list[tuple[bytes, bytes]]:
        """Break the ``malformed`` slots of ``out``, record the faults, interleave the duplicates."""
        truth, rng = self.truth, self.rng

        def event_id(slot: int) -> str:
            return f"{self.id_prefix}{first_id + slot:010d}"

        def where(slot: int) -> tuple[int, int]:
            """(customer index, meter index) of a slot."""
            return picked[slot], self.meter_of[picked[slot]][meter_draws[slot] & TABLE_MASK]

        for slot in malformed:
            reason = MALFORMED_KINDS[int(rng.random() * len(MALFORMED_KINDS))]
            key, raw = out[slot]
            out[slot] = (key, self._malformed(orjson.loads(raw), reason, times[slot]))
            truth.malformed.append((event_id(slot), where(slot)[0], reason))
        bad = set(malformed)
        for slot, at in emitted.items():
            if slot not in bad:
                truth.late.append((event_id(slot), *where(slot), times[slot], at))
        duplicates = []
        for order, slot in enumerate(duplicated):
            duplicates.append((slot + 1 + int(rng.random() * DUPLICATE_SPREAD), order, out[slot]))
            truth.duplicates.append((event_id(slot), *where(slot), times[slot]))
        if duplicates:
            out = _interleave(out, duplicates)
        truth.records += len(out)
        return out

    def _malformed(self, event: dict, reason: str, t_us: int) -> bytes:
        """The wire bytes of ``event`` broken in the way ``reason`` names."""
        if reason == "invalid_json":
            raw = orjson.dumps(event)
            return raw[: len(raw) // 2]
        broken = dict(event, data=dict(event["data"]))
        if reason == "missing_field":
            victim = ("subject", "time", "source", "quantity")[int(self.rng.random() * 4)]
            if victim == "quantity":
                del broken["data"]["quantity"]
            else:
                del broken[victim]
        elif reason == "negative_quantity":
            broken["data"]["quantity"] = "-" + (event["data"]["quantity"] if event["data"]["quantity"] != "0" else "1")
        elif reason == "unknown_meter":
            broken["type"] = UNKNOWN_METER
        elif reason == "future_timestamp":
            broken["time"] = self._time_text(t_us + us_of(datetime(1970, 1, 1, tzinfo=UTC) + FUTURE_SHIFT))
        else:
            broken["time"] = event["time"].removesuffix("Z")
        return orjson.dumps(broken)


def _spread(items: list, weights: list[float], size: int) -> list:
    """A table of ``size`` entries holding each item in proportion to its weight."""
    total = sum(weights)
    table, done = [], 0
    for item, upto in zip(items, accumulate(weights), strict=True):
        end = round(size * upto / total)
        table.extend([item] * (end - done))
        done = end
    return table


def _interleave(records: list, duplicates: list) -> list:
    """Insert each duplicate ``(position, order, record)`` before the record at ``position``."""
    duplicates.sort()
    merged = []
    cursor = 0
    for position, _, record in duplicates:
        position = min(position, len(records))
        merged.extend(records[cursor:position])
        cursor = max(cursor, position)
        merged.append(record)
    merged.extend(records[cursor:])
    return merged
