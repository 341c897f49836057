"""The OpenMeter-compatible surface, the pure part: OpenMeter's JSON shapes of meters, subjects and
meter queries, built from the configured meters, the customers and the usage rollups.

Meters are configuration here (``billing/core/meters.py``): a meter's ``slug`` and ``eventType`` are its
name, ``valueProperty`` is ``$.<value_field>``, ``groupBy`` maps each dimension to ``$.<dimension>``, and
its ``id`` is a ULID-shaped digest of the name (stable across restarts and API workers).

A meter query reads the same rollups, with the same per-window rule, as ``GET /v1/customers/{id}/usage``
(:func:`api.reads.usage_buckets`). Rows of several customers or dimension groups that fall in one
OpenMeter row are merged by the meter's aggregation: SUM and COUNT add, MAX takes the largest. Distinct
counts (UNIQUE_COUNT) and last values (LATEST) cannot be merged from rollups, so queries of such meters
must keep every customer and dimension apart (:func:`check_mergeable`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from api.problems import Problem
from billing.core.contracts import Customer, clip
from billing.core.invoicing.usage import HourStats, quantity
from billing.core.meters import Aggregation, Meter, MeterSet

SUBJECT = "subject"
"""The reserved ``groupBy`` value of OpenMeter: one row per subject (customer id)."""
MERGEABLE = (Aggregation.SUM, Aggregation.COUNT, Aggregation.MAX)
_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
_ALIASED = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class WindowSize(StrEnum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"


class OpenMeterMeter(BaseModel):
    """A meter as OpenMeter describes it (read-only here: meters are the project's configuration)."""

    model_config = _ALIASED

    id: str = Field(pattern=r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$", description="ULID-shaped digest of the slug.")
    slug: str = Field(description="The meter's name.")
    name: str
    description: str | None = None
    aggregation: Aggregation
    event_type: str = Field(alias="eventType", description="Usage events of this meter carry it as `type`.")
    value_property: str = Field(alias="valueProperty", description="JSONPath of the measured field in `data`.")
    group_by: dict[str, str] = Field(alias="groupBy", description="Dimension -> JSONPath in `data`.")
    created_at: datetime = Field(alias="createdAt", description="When this API worker loaded the meters.")
    updated_at: datetime = Field(alias="updatedAt", description="When this API worker loaded the meters.")


class OpenMeterQueryRow(BaseModel):
    model_config = _ALIASED

    value: float = Field(description="The aggregated value (a JSON number, as in OpenMeter).")
    window_start: datetime = Field(alias="windowStart")
    window_end: datetime = Field(alias="windowEnd")
    subject: str | None = Field(description="The customer id when grouped or filtered by subject, else null.")
    group_by: dict[str, str | None] = Field(alias="groupBy", description="Values of the requested `groupBy` dimensions.")


class OpenMeterQueryResult(BaseModel):
    model_config = _ALIASED

    from_: datetime = Field(alias="from", description="Start of the queried range (rounded down to its window).")
    to: datetime = Field(description="End of the queried range, exclusive.")
    window_size: WindowSize | None = Field(default=None, alias="windowSize", exclude_if=lambda size: size is None)
    data: list[OpenMeterQueryRow]


class OpenMeterSubject(BaseModel):
    """A subject: one customer, keyed by its id."""

    model_config = _ALIASED

    id: str = Field(pattern=r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$", description="ULID-shaped digest of the key.")
    key: str = Field(description="The customer id (the `subject` of its usage events).")
    display_name: str | None = Field(alias="displayName")
    metadata: dict[str, str] | None = None
    created_at: datetime = Field(alias="createdAt", description="The customer's signup time.")
    updated_at: datetime = Field(alias="updatedAt")


def ulid_of(text: str) -> str:
    """A stable ULID-shaped id (26 Crockford base-32 characters, the first 0-7) of ``text``."""
    digest = base64.b32encode(hashlib.blake2b(text.encode(), digest_size=20).digest()).decode().translate(_CROCKFORD)
    return "0" + digest[:25]


def meter_shape(meter: Meter, loaded_at: datetime) -> OpenMeterMeter:
    """``meter`` in OpenMeter's shape."""
    return OpenMeterMeter(id=ulid_of(meter.name), slug=meter.name, name=meter.name, description=meter.description or None,
                          aggregation=meter.aggregation, event_type=meter.name, value_property=f"$.{meter.value_field}",
                          group_by={name: f"$.{name}" for name in meter.group_by}, created_at=loaded_at, updated_at=loaded_at)


def find_meter(meters: MeterSet, id_or_slug: str) -> Meter:
    """The meter whose slug or id is ``id_or_slug``, or a 404 Problem."""
    found = meters.get(id_or_slug) or next((m for m in meters if ulid_of(m.name) == id_or_slug), None)
    if found is None:
        raise Problem(404, f"no meter {clip(id_or_slug)}; known meters: {', '.join(meters.names)}", kind="unknown-meter")
    return found


def subject_shape(customer: Customer) -> OpenMeterSubject:
    """``customer`` as an OpenMeter subject."""
    return OpenMeterSubject(id=ulid_of(customer.id), key=customer.id, display_name=customer.company_name,
                            metadata={"currency": customer.currency, "segment": customer.segment.value, "country": customer.country},
                            created_at=customer.signup_time, updated_at=customer.updated_at)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or a 400 Problem."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(400, f"windowTimeZone {clip(name)} is not an IANA time zone (e.g. Europe/Berlin)",
                      kind="invalid-time-zone") from None


def check_aligned(tz: ZoneInfo, window: WindowSize | None, start: datetime, end: datetime) -> None:
    """400 unless the windows of ``tz`` align with the stored UTC rollups in ``[start, end)``: HOUR and DAY
    windows (and whole periods) need whole-hour UTC offsets there, MINUTE windows whole minutes."""
    step = 60 if window is WindowSize.MINUTE else 3600
    moment = start
    while moment <= end:
        if tz.utcoffset(moment.astimezone(tz).replace(tzinfo=None)).total_seconds() % step:
            raise Problem(400, f"windowTimeZone {tz.key} is offset from UTC by a fraction of an hour on "
                               f"{moment:%Y-%m-%d}; {window.value if window else 'its'} windows need whole-hour "
                               "offsets (the rollups are UTC minutes and hours)", kind="invalid-time-zone")
        moment += timedelta(hours=12)


def local_day(tz: ZoneInfo) -> Callable[[datetime], datetime]:
    """Rounding of a moment down to the start of its day in ``tz`` (in UTC)."""
    return lambda moment: moment.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def window_end(start: datetime, window: WindowSize | None, tz: ZoneInfo, period_end: datetime) -> datetime:
    """The end of the window starting at ``start`` (a local day in ``tz`` for DAY; ``period_end`` without a window)."""
    if window is None:
        return period_end
    if window is WindowSize.DAY:
        return (start.astimezone(tz) + timedelta(days=1)).astimezone(UTC)
    return start + timedelta(seconds=60 if window is WindowSize.MINUTE else 3600)


def check_group_by(meter: Meter, group_by: list[str], filters: dict[str, str]) -> list[str]:
    """The requested dimensions of ``group_by`` (``subject`` removed), or a 400 Problem naming an unknown one."""
    unknown = [name for name in group_by if name != SUBJECT and name not in meter.group_by]
    unknown += [name for name in filters if name not in meter.group_by]
    if unknown:
        raise Problem(400, f"meter {meter.name} has no dimension {clip(unknown[0])}; its groupBy dimensions are "
                               f"{', '.join(meter.group_by) or '(none)'} (and `subject` for groupBy)", kind="invalid-group-by")
    return [name for name in dict.fromkeys(group_by) if name != SUBJECT]


def check_mergeable(meter: Meter, by_subject: bool, dimensions: list[str], filters: dict[str, str]) -> None:
    """400 when a query of a meter whose values cannot be merged would merge customers or dimension groups."""
    if meter.aggregation in MERGEABLE:
        return
    merged = [name for name in meter.group_by if name not in dimensions and name not in filters]
    if not by_subject or merged:
        missing = ", ".join(([] if by_subject else [SUBJECT]) + merged)
        raise Problem(400, f"meter {meter.name} is {meter.aggregation.value}: its values of different customers or "
                           f"dimension groups cannot be merged; add groupBy={missing} (or filter one subject)",
                      kind="unmergeable-query")


def query_rows(rows: Iterable[tuple], meter: Meter, by_subject: bool, dimensions: list[str], window: WindowSize | None,
               tz: ZoneInfo, period_end: datetime) -> list[OpenMeterQueryRow]:
    """OpenMeter rows of :func:`api.reads.usage_buckets` rows of ``meter``: each bucket's value by the
    native usage rule, merged per (subject if ``by_subject``, ``dimensions``, window) by the meter's
    aggregation, ordered by window, subject and dimension values."""
    merged: dict[tuple, Decimal] = {}
    for customer, _meter, _group, stored, aggregation, bucket, total, peak, last, _events in rows:
        value = quantity(Aggregation(aggregation), HourStats(total, peak, last))
        key = (bucket, customer if by_subject else None, tuple(stored.get(name) for name in dimensions))
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = value
        elif meter.aggregation is Aggregation.MAX:
            merged[key] = max(earlier, value)
        else:
            merged[key] = earlier + value
    return [OpenMeterQueryRow(value=float(value), window_start=bucket, window_end=window_end(bucket, window, tz, period_end),
                              subject=subject, group_by=dict(zip(dimensions, values, strict=True)))
            for (bucket, subject, values), value in sorted(merged.items(), key=lambda item: (item[0][0], item[0][1] or "",
                                                                                             [v or "" for v in item[0][2]]))]
