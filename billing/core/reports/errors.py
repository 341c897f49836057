"""Errors of report requests and jobs (each one line, each actionable)."""

from __future__ import annotations

from billing.core.errors import BillingError, ConfigError


class UnknownJob(BillingError):
    """No report job with that id (or not one the asker may see)."""


class IdempotencyConflict(ConfigError):
    """An idempotency key already names a job that asks for a different report."""


class ReportNotReady(BillingError):
    """The job's file does not exist (yet, or any more)."""


class ReportScopeError(BillingError):
    """A report kind asked with a customer it does not take (a finance summary) or without one it needs."""
