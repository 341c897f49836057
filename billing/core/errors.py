"""Exceptions with messages a user can act on.

The CLI prints any :class:`BillingError` as one line (no traceback unless ``--debug``) and
exits non-zero. Raise the most specific subclass; say what went wrong and what to do.
"""


class BillingError(Exception):
    """Base class for every error the project reports to a user."""

    exit_code = 1


class ConfigError(BillingError):
    """Invalid configuration, arguments or input files."""

    exit_code = 2


class PlatformError(BillingError):
    """A local service (broker, warehouse, worker, ...) could not be started, stopped or reached."""


class ServiceUnavailable(PlatformError):
    """A service the command needs is not reachable."""
