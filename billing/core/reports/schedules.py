"""Report schedules as data, and the run of a schedule that is due at a moment.

A schedules file (YAML or JSON) holds a ``schedules`` list::

    schedules:
      - id: monthly-usage          # unique; part of every job id the schedule makes
        every: monthly             # monthly: the last closed month; daily: yesterday's month, to date
        kind: customer_usage       # or finance_summary (no customers: it covers every customer)
        format: pdf                # or csv
        customers: all             # or a list of customer ids (customer_usage only)

A run is named by its schedule and period key (``2026-09`` for a monthly run, ``2026-09-14`` for the
daily run of that day) and each report of a run by :func:`idempotency_key`, so the job ids of a run
are the same whoever computes them, whenever: asking again names the same jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from billing.core.contracts import Id, ReportFormat, ReportKind, describe_error
from billing.core.errors import ConfigError
from billing.core.pricing.proration import month_period

SCOPE = "schedule"
"""The requester of scheduled jobs (the scope of their job ids)."""


class Every(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"


class Schedule(BaseModel):
    """One schedule: which reports, how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    every: Every
    kind: ReportKind = ReportKind.CUSTOMER_USAGE
    format: ReportFormat = ReportFormat.PDF
    customers: Literal["all"] | tuple[Id, ...] = "all"

    @model_validator(mode="after")
    def _scoped(self) -> Schedule:
        if self.kind is ReportKind.FINANCE_SUMMARY and self.customers != "all":
            raise ValueError("a finance_summary covers every customer: leave out customers")
        if self.customers != "all" and not self.customers:
            raise ValueError("customers is 'all' or a non-empty list of customer ids")
        return self


@dataclass(frozen=True)
class Run:
    """A run of a schedule: its reports cover ``period`` (``YYYY-MM``), the run is named by ``key``."""

    schedule: Schedule
    key: str
    period: str


def due(schedule: Schedule, now: datetime) -> Run:
    """The latest run of ``schedule`` at ``now``: the month before ``now``'s month (monthly), or the day before
    ``now``'s day, reported as its month to date (daily)."""
    if schedule.every is Every.MONTHLY:
        month = month_period(month_period(now).start - timedelta(days=1))
        return Run(schedule, f"{month.start:%Y-%m}", f"{month.start:%Y-%m}")
    day = (now - timedelta(days=1)).date()
    return Run(schedule, day.isoformat(), f"{day:%Y-%m}")


def run_prefix(run: Run) -> str:
    """What the idempotency keys of every report of ``run`` start with."""
    return f"{run.schedule.id}:{run.key}:"


def idempotency_key(run: Run, customer_id: str | None) -> str:
    """The key of one report of ``run`` (``customer_id`` None: the finance summary)."""
    return f"{run_prefix(run)}{customer_id or '*'}"


def parse_schedules(document: Any, source: str) -> tuple[Schedule, ...]:
    """The schedules of a parsed file; one :class:`ConfigError` naming ``source`` per problem."""
    if not isinstance(document, dict) or set(document) != {"schedules"} or not isinstance(document["schedules"], list):
        raise ConfigError(f"{source}: a schedules file holds one key, `schedules`, a list")
    found: dict[str, Schedule] = {}
    for number, item in enumerate(document["schedules"], start=1):
        try:
            schedule = Schedule.model_validate(item)
        except ValidationError as exc:
            name = item.get("id") if isinstance(item, dict) else None
            raise ConfigError(f"{source}: schedule {name or number}: {describe_error(exc)}") from None
        if schedule.id in found:
            raise ConfigError(f"{source}: schedule id {schedule.id!r} is used twice; ids name the scheduled jobs")
        found[schedule.id] = schedule
    return tuple(found.values())
