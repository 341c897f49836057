"""The lifecycle of a report job, as pure transitions of :class:`JobState`.

``queued -> running (progress %) -> completed -> expired`` or ``queued|running -> failed``. A job
that crashed while running is found ``running`` again when its message is redelivered: it starts a
new attempt, and after ``max_attempts`` attempts it fails instead. Completed, failed and expired are
terminal: a terminal job is never run again, so it never completes twice.

Every state carries a ``version`` (the warehouse keeps the highest): 0 for the queued state, which
the requester writes and which must never hide what a worker wrote; else the attempt number (the job's
generation) in the bits above :data:`GENERATION_SHIFT` and the microseconds of the transition below,
strictly increasing per job. So whatever an attempt writes late (a worker stalled past its consumer
session while another took the job over) never hides a later attempt's states, and :func:`fence`
refuses to let it finish the job: only the job's current attempt completes (or fails) it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from billing.core.contracts import ReportJob
from billing.core.errors import BillingError


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.EXPIRED})


GENERATION_SHIFT = 52
"""Bits of a version below its attempt number: microseconds since 1970 fit until 2112."""


class InvalidJobTransition(BillingError):
    """A change the job's status does not allow (e.g. completing a failed job)."""


class StaleAttempt(BillingError):
    """An attempt another attempt superseded (its worker stalled past its session): it may not finish the job."""


@dataclass(frozen=True)
class JobState:
    """What is known of one job: its request, status, progress and outcome."""

    job: ReportJob
    status: JobStatus
    version: int
    updated_at: datetime
    progress: int = 0
    attempts: int = 0
    error: str | None = None
    file: str | None = None
    finished_at: datetime | None = None

    @property
    def job_id(self) -> str:
        return self.job.id


def job_id(scope: str, idempotency_key: str) -> str:
    """The id of the job requested by ``scope`` (an API key id, ``cli``) under ``idempotency_key``:
    the same key always names the same job."""
    return "rpt-" + hashlib.sha256(f"{scope}\0{idempotency_key}".encode()).hexdigest()[:24]


def same_request(a: ReportJob, b: ReportJob) -> bool:
    """Whether two requests ask for the same report (times aside)."""
    return (a.customer_id, a.period, a.kind, a.format) == (b.customer_id, b.period, b.kind, b.format)


def queued(job: ReportJob) -> JobState:
    """The state of a job just requested."""
    return JobState(job, JobStatus.QUEUED, version=0, updated_at=job.requested_at)


def _next(state: JobState, now: datetime, **changes) -> JobState:
    changed = replace(state, updated_at=now, **changes)
    stamp = (changed.attempts << GENERATION_SHIFT) | int(now.timestamp() * 1_000_000)
    return replace(changed, version=max(state.version + 1, stamp))


def fence(mine: JobState, latest: JobState | None) -> None:
    """Refuse to finish the attempt ``mine`` unless the job's ``latest`` stored state is that attempt, still running."""
    if latest is None or latest.status is not JobStatus.RUNNING or latest.attempts != mine.attempts:
        now = f"{latest.status.value} at attempt {latest.attempts}" if latest else "unknown"
        raise StaleAttempt(f"report job {mine.job_id}: attempt {mine.attempts} was superseded (the job is {now}); "
                           "its result is dropped")


def _require(state: JobState, allowed: set[JobStatus], action: str) -> None:
    if state.status not in allowed:
        raise InvalidJobTransition(f"report job {state.job_id} is {state.status.value}; it cannot be {action}")


def begin(state: JobState, now: datetime, max_attempts: int) -> JobState:
    """A new attempt of a queued job, or of a running one whose worker crashed; ``failed`` once
    ``max_attempts`` attempts were made."""
    _require(state, {JobStatus.QUEUED, JobStatus.RUNNING}, "started")
    if state.attempts >= max_attempts:
        return fail(state, f"gave up after {state.attempts} attempt(s): the worker stopped mid-job each time"
                           + (f" (last error: {state.error})" if state.error else ""), now)
    return _next(state, now, status=JobStatus.RUNNING, progress=0, attempts=state.attempts + 1)


def advance(state: JobState, percent: int, now: datetime) -> JobState:
    """A running job's progress (never backwards, 100 only on completion)."""
    _require(state, {JobStatus.RUNNING}, "advanced")
    return _next(state, now, progress=max(state.progress, min(99, max(0, percent))))


def retry_later(state: JobState, error: str, now: datetime) -> JobState:
    """A running attempt that failed for a passing reason: the error is kept for the next attempt."""
    _require(state, {JobStatus.RUNNING}, "retried")
    return _next(state, now, error=error)


def complete(state: JobState, file: str, now: datetime) -> JobState:
    """A running job whose file is written."""
    _require(state, {JobStatus.RUNNING}, "completed")
    return _next(state, now, status=JobStatus.COMPLETED, progress=100, error=None, file=file, finished_at=now)


def fail(state: JobState, reason: str, now: datetime) -> JobState:
    """A job that will not produce its report, and why."""
    _require(state, {JobStatus.QUEUED, JobStatus.RUNNING}, "failed")
    return _next(state, now, status=JobStatus.FAILED, error=reason, finished_at=now)


def expire(state: JobState, now: datetime) -> JobState:
    """A completed job whose file was removed after the retention period."""
    _require(state, {JobStatus.COMPLETED}, "expired")
    return _next(state, now, status=JobStatus.EXPIRED, file=None)
