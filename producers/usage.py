"""The usage-event hot path: plain dicts -> orjson bytes, no pydantic, no Faker per event.

Everything random comes from one ``random.Random`` seeded by the run seed, so a given seed and
sequence of batches always yields the same bytes. Customers are sampled by their Pareto weight
times the diurnal/weekly curve of their time zone; quantities come from per-meter lognormal tables
drawn once at start. While generating, the exact ground truth is folded in (see
:class:`UsageTruth`): malformed records are excluded, duplicates counted once, late events counted
in the window of their own event time.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate

import orjson

from billing.errors import ConfigError
from billing.meters import QUANTITY_FIELD, Aggregation, MeterSet
from producers.catalog import DIURNAL, ENDPOINTS, METER_PROFILES, WEEKLY
from producers.customers import CustomerProfile

UTC = timezone.utc
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
TABLE_BITS = 12
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

    ``hourly[(customer_index, meter_index, hour_us)] = [value, events]`` where value is the
    meter's aggregation over the unique valid events of that hour, in fixed-point integers of the
    meter's scale for quantities (a set for UNIQUE_COUNT, ``(time_us, id, value)`` for LATEST).
    ``daily_distinct`` keeps UNIQUE_COUNT sets per day (distinct counts do not add up).
    """

    hourly: dict = field(default_factory=dict)
    daily_distinct: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)  # (id, customer_index, meter_index, time_us)
    late: list = field(default_factory=list)  # (id, customer_index, meter_index, time_us, emitted_at_us)
    malformed: list = field(default_factory=list)  # (id, customer_index, reason)
    records: int = 0


class UsageGenerator:
    """Generates batches of usage records ``(key, value)`` for a fixed set of customers."""

    def __init__(self, customers: list[CustomerProfile], meters: MeterSet, seed: int,
                 faults: FaultRates = FaultRates(), source: str = "billing-simulator"):
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
        self.faults = faults
        self.source = source
        self.id_prefix = f"evt-{seed}-"
        self.next_id = 0
        self.truth = UsageTruth()
        self._hour_prefix: dict[int, str] = {}
        self._prepare_tables()

    # ------------------------------------------------------------------ setup (not hot)

    def _prepare_tables(self) -> None:
        rng = self.rng
        size = 1 << TABLE_BITS
        self.meter_names = [m.name for m in self.meters]
        # scale -1 marks a meter whose events always carry quantity 1 (one event per active user)
        self.meter_scale = [-1 if m.name == "active_seats" else METER_PROFILES[m.name].scale for m in self.meters]
        self.meter_field = [m.value_field for m in self.meters]
        self.meter_agg = [m.aggregation for m in self.meters]
        self.meter_dims = [_DIMENSIONS_BY_METER[m.name] for m in self.meters]
        self.tables = []
        for meter in self.meters:
            profile = METER_PROFILES[meter.name]
            self.tables.append([rng.lognormvariate(profile.mu, profile.sigma) for _ in range(size)])
        shares = [METER_PROFILES[m.name].share for m in self.meters]
        self.customer_meter_cum = []
        for _ in self.customers:
            mix = [share * rng.lognormvariate(0, 0.5) for share in shares]
            self.customer_meter_cum.append(list(accumulate(mix)))
        self.endpoint_names = [e for e, _ in ENDPOINTS]
        self.endpoint_cum = list(accumulate(w for _, w in ENDPOINTS))
        groups: dict[int, list[CustomerProfile]] = defaultdict(list)
        for customer in self.customers:
            groups[customer.market.utc_offset_h].append(customer)
        self.zone_offsets = sorted(groups)
        self.zone_customers = [[c.index for c in groups[o]] for o in self.zone_offsets]
        self.zone_cum = [list(accumulate(c.weight for c in groups[o])) for o in self.zone_offsets]
        self.customer_keys = [c.id.encode() for c in self.customers]
        self.customer_ids = [c.id for c in self.customers]
        self.seats = [c.seats for c in self.customers]
        self.multipliers = [c.usage_multiplier for c in self.customers]
        self._prepare_templates()

    def _prepare_templates(self) -> None:
        """Per customer and meter, the event JSON with every constant filled in and ``%s`` slots for
        id, time, quantity and the one per-event dimension (endpoint or user id)."""
        dynamic = {"endpoint", "user_id"}
        self.dynamic_dim = []
        for dims in self.meter_dims:
            moving = [d for d in dims if d in dynamic]
            self.dynamic_dim.append(moving[0] if moving else None)
        self.value_is_quantity = [f == QUANTITY_FIELD for f in self.meter_field]
        self.value_is_dynamic = [f == d for f, d in zip(self.meter_field, self.dynamic_dim)]
        self.templates, self.static_values = [], []
        for customer in self.customers:
            static = {"region": customer.market.cloud_region, "tier": customer.tier}
            rows, values = [], []
            for mi, name in enumerate(self.meter_names):
                data = {"quantity": "\0Q"}
                for dim in self.meter_dims[mi]:
                    data[dim] = static.get(dim, "\0X")
                event = {
                    "schema_version": 1, "specversion": "1.0", "id": "\0I", "source": self.source, "type": name,
                    "subject": customer.id, "time": "\0T", "data": data,
                }
                text = orjson.dumps(event).decode().replace("%", "%%")
                rows.append(text.replace("\\u0000I", "%s", 1).replace("\\u0000T", "%s", 1)
                            .replace("\\u0000Q", "%s", 1).replace("\\u0000X", "%s", 1))
                values.append(static.get(self.meter_field[mi]))
            self.templates.append(rows)
            self.static_values.append(values)

    def zone_weights(self, hour_us: int) -> list[float]:
        """Relative traffic of each time zone group in the UTC hour starting at ``hour_us``."""
        hour = hour_us // HOUR_US
        weights = []
        for offset, cum in zip(self.zone_offsets, self.zone_cum):
            local = hour + offset
            weekday = (local // 24 + 3) % 7  # 1970-01-01 was a Thursday
            weights.append(cum[-1] * DIURNAL[local % 24] * WEEKLY[weekday])
        return weights

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

    def batch(self, window_start_us: int, window_us: int, count: int) -> list[tuple[bytes, bytes]]:
        """``count`` records with event times spread over ``[window_start, +window_us)``, in time order
        (late events excepted), including injected duplicates and malformed records."""
        if count <= 0:
            return []
        rng = self.rng
        random_ = rng.random
        getrandbits = rng.getrandbits
        zone_counts = [0] * len(self.zone_offsets)
        zone_pick = rng.choices(range(len(self.zone_offsets)), self.zone_weights(window_start_us), k=count)
        for z in zone_pick:
            zone_counts[z] += 1
        zone_iters = [
            iter(rng.choices(self.zone_customers[z], cum_weights=self.zone_cum[z], k=n)) if n else iter(())
            for z, n in enumerate(zone_counts)
        ]
        picked = [next(zone_iters[z]) for z in zone_pick]
        times = sorted(window_start_us + int(random_() * window_us) for _ in range(count))

        faults = self.faults
        p_dup, p_late, p_bad = faults.duplicate, faults.late, faults.malformed
        lateness_us = int(faults.lateness_s * 1_000_000)
        truth = self.truth
        hourly, daily_distinct = truth.hourly, truth.daily_distinct
        keys, customer_ids, seats, multipliers = self.customer_keys, self.customer_ids, self.seats, self.multipliers
        meter_cum, n_meters = self.customer_meter_cum, len(self.meters)
        scales, aggs, tables = self.meter_scale, self.meter_agg, self.tables
        templates, dynamic_dims, static_values = self.templates, self.dynamic_dim, self.static_values
        value_is_quantity, value_is_dynamic = self.value_is_quantity, self.value_is_dynamic
        endpoint_names, endpoint_cum, endpoint_total = self.endpoint_names, self.endpoint_cum, self.endpoint_cum[-1]
        hour_prefix_of = self._hour_prefix_of
        hour_lo = hour_hi = 0
        hour_prefix = ""
        prefix = self.id_prefix
        next_id = self.next_id
        table_bits = TABLE_BITS
        SUM, UNIQUE, MAX, LATEST = (Aggregation.SUM, Aggregation.UNIQUE_COUNT, Aggregation.MAX,
                                    Aggregation.LATEST)
        out: list[tuple[bytes, bytes]] = []
        duplicates: list[tuple[int, int, tuple[bytes, bytes]]] = []

        for slot in range(count):
            ci = picked[slot]
            cum = meter_cum[ci]
            mi = bisect(cum, random_() * cum[-1])
            if mi >= n_meters:
                mi = n_meters - 1
            t_us = times[slot]
            event_id = f"{prefix}{next_id:010d}"
            next_id += 1
            late = p_late and random_() < p_late
            if late:
                t_us = t_us - lateness_us - 1 - int(random_() * lateness_us)
            if not hour_lo <= t_us < hour_hi:
                hour_lo = t_us - t_us % HOUR_US
                hour_hi = hour_lo + HOUR_US
                hour_prefix = hour_prefix_of(hour_lo)
            rest = t_us - hour_lo
            time_text = f"{hour_prefix}{MINUTE_SECOND[rest // 1_000_000]}.{rest % 1_000_000:06d}Z"
            scale = scales[mi]
            if scale < 0:
                q = 1
                quantity = "1"
            else:
                q = int(tables[mi][getrandbits(table_bits)] * multipliers[ci] * 10**scale)
                if scale == 0:
                    q += 1
                    quantity = str(q)
                else:
                    quantity = f"{q // 1000}.{q % 1000:03d}"
            dynamic = dynamic_dims[mi]
            if dynamic is None:
                extra = None
                raw = templates[ci][mi] % (event_id, time_text, quantity)
            else:
                if dynamic == "endpoint":
                    extra = endpoint_names[bisect(endpoint_cum, random_() * endpoint_total)]
                else:
                    extra = f"{customer_ids[ci]}-u{int(random_() * seats[ci])}"
                raw = templates[ci][mi] % (event_id, time_text, quantity, extra)
            if p_bad and random_() < p_bad:
                reason = MALFORMED_KINDS[int(random_() * len(MALFORMED_KINDS))]
                out.append((keys[ci], self._malformed(orjson.loads(raw), reason, t_us)))
                truth.malformed.append((event_id, ci, reason))
                continue
            record = (keys[ci], raw.encode())
            out.append(record)
            if late:
                truth.late.append((event_id, ci, mi, t_us, times[slot]))
            if p_dup and random_() < p_dup:
                duplicates.append((slot + 1 + int(random_() * DUPLICATE_SPREAD), len(duplicates), record))
                truth.duplicates.append((event_id, ci, mi, t_us))

            # fold into the ground truth
            value = q if value_is_quantity[mi] else (extra if value_is_dynamic[mi] else static_values[ci][mi])
            hour = t_us - t_us % HOUR_US
            bucket_key = (ci, mi, hour)
            bucket = hourly.get(bucket_key)
            agg = aggs[mi]
            if bucket is None:
                hourly[bucket_key] = bucket = [set() if agg is UNIQUE else None, 0]
            bucket[1] += 1
            if agg is SUM:
                bucket[0] = value if bucket[0] is None else bucket[0] + value
            elif agg is UNIQUE:
                bucket[0].add(value)
                day_key = (ci, mi, t_us - t_us % DAY_US)
                day = daily_distinct.get(day_key)
                if day is None:
                    daily_distinct[day_key] = day = set()
                day.add(value)
            elif agg is MAX:
                if bucket[0] is None or value > bucket[0]:
                    bucket[0] = value
            elif agg is LATEST:
                candidate = (t_us, event_id, value)
                if bucket[0] is None or candidate[:2] > bucket[0][:2]:
                    bucket[0] = candidate

        self.next_id = next_id
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
