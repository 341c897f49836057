"""``GET /v1/customers/{id}/usage``: usage per meter and window from the replay-safe rollups."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api import reads
from api.auth import authenticated
from api.context import context
from api.keys import ApiKey
from api.lookup import readable_customer
from api.problems import Problem
from api.routes.responses import READ_ERRORS, CustomerId, problem
from api.schemas import Usage, UsagePoint, UsageSeries, Window
from billing.core.invoicing.usage import HourStats, quantity
from billing.core.meters import Aggregation, MeterSet, window_start

router = APIRouter(tags=["usage"])

SECONDS = {Window.MINUTE: 60, Window.HOUR: 3600, Window.DAY: 86400}
DEFAULT_SPAN = {Window.MINUTE: timedelta(hours=1), Window.HOUR: timedelta(days=1), Window.DAY: timedelta(days=30)}
MAX_SPAN = {Window.MINUTE: timedelta(days=2), Window.HOUR: timedelta(days=93), Window.DAY: timedelta(days=732)}
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 1, 1, tzinfo=UTC)
DAY_RULE = ("from the day's hour windows, as invoices bill a period: SUM and COUNT meters add the hours; "
            "UNIQUE_COUNT and MAX meters take the peak hour (distinct counts of hours cannot be added); "
            "LATEST meters take the last hour with usage")


def time_range(window: Window, start: datetime | None, end: datetime | None, now: datetime,
               align: Callable[[datetime], datetime] | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` of a usage query: defaults, ``start`` rounded down to its window (or by ``align``),
    limits (400)."""
    for moment, name in ((start, "from"), (end, "to")):
        if moment is not None and not EARLIEST <= moment <= LATEST:
            raise Problem(400, f"`{name}` must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (the warehouse's "
                               "time range)", kind="invalid-range")
    end = (end or now).astimezone(UTC)
    start = (start.astimezone(UTC) if start else end - DEFAULT_SPAN[window])
    start = align(start) if align else window_start(start, SECONDS[window])
    if start >= end:
        raise Problem(400, f"`from` ({start.isoformat()}) must be before `to` ({end.isoformat()})", kind="invalid-range")
    if end - start > MAX_SPAN[window]:
        raise Problem(400, f"a {window.value} query spans at most {MAX_SPAN[window].days} days; narrow `from`/`to` "
                           "or use a larger window", kind="range-too-large")
    return start, end


def aware(start: datetime | None, end: datetime | None) -> None:
    """422 unless the given ``from`` and ``to`` of a query have a timezone."""
    for moment, name in ((start, "from"), (end, "to")):
        if moment is not None and moment.tzinfo is None:
            raise Problem(422, f"`{name}` needs a timezone (e.g. 2026-01-31T00:00:00Z)", kind="invalid-request")


def plain(value: Decimal) -> Decimal:
    """``12.500000000 -> 12.5`` (the warehouse keeps 9 decimals), never in exponent notation."""
    return Decimal(format(value.normalize(), "f"))


def series(rows: Iterable[tuple], meters: MeterSet) -> list[UsageSeries]:
    """Rows of :func:`api.reads.usage_buckets` without their customer (ordered by meter, group, time) as
    one series per meter and dimension group; a bucket's value follows :func:`~billing.core.invoicing.usage.quantity`
    (the stored value for minute and hour windows, whose sum, peak and last are that value)."""
    found = []
    for (meter, _group), group_rows in groupby(rows, key=lambda row: (row[0], row[1])):
        group_rows = list(group_rows)
        dimensions, aggregation = group_rows[0][2], Aggregation(group_rows[0][3])
        points = [UsagePoint(window_start=r[4], value=plain(quantity(aggregation, HourStats(r[5], r[6], r[7]))), events=r[8])
                  for r in group_rows]
        configured = meters.get(meter)
        found.append(UsageSeries(meter=meter, unit=configured.unit if configured else "", aggregation=aggregation,
                                 dimensions=dict(dimensions), points=points))
    return found


@router.get(
    "/v1/customers/{customer_id}/usage",
    response_model=Usage,
    summary="Usage of a customer per meter and window",
    description=(
        "Windows of the usage rollups (`usage_rollups` FINAL: the latest version of every window, so replays never "
        "double count) that start in `[from, to)`, one series per meter and dimension group; windows without usage "
        "are omitted. `minute` and `hour` are the stream worker's windows; a `day` is computed "
        f"{DAY_RULE}. Days are UTC. `from` is rounded down to the start of its window. Defaults: `to` = now, "
        "`from` = 1 hour (minute), 1 day (hour) or 30 days (day) earlier; at most 2, 93 or 732 days per query. "
        "Usage appears once the stream worker has closed or updated its windows."
    ),
    responses={**READ_ERRORS, 400: problem("Bad time range: `from` not before `to`, too long, or outside 1970-2105.")},
)
async def get_usage(
    request: Request,
    customer_id: CustomerId,
    meter: Annotated[str | None, Query(description="Only this meter (default: every meter).", max_length=64)] = None,
    start: Annotated[datetime | None, Query(alias="from", description="Start (timezone-aware).")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="End, exclusive (timezone-aware).")] = None,
    window: Window = Window.HOUR,
    key: ApiKey = Depends(authenticated),
) -> Usage:
    ctx = context(request)
    aware(start, end)
    if meter is not None and meter not in ctx.meters:
        raise Problem(422, f"unknown meter {meter!r}; known meters: {', '.join(ctx.meters.names)}", kind="unknown-meter")
    low, high = time_range(window, start, end, datetime.now(UTC))
    await readable_customer(ctx, key, customer_id)
    rows = await ctx.warehouse.read(reads.usage_buckets, window.value, low, high, customers=[customer_id], meter=meter)
    return Usage(customer_id=customer_id, window=window, start=low, end=high,
                 day_rule=DAY_RULE if window is Window.DAY else None, series=series([row[1:] for row in rows], ctx.meters))
