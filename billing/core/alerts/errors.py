"""Errors of alert rules: one class per kind of mistake, each message says what to write instead.

They are ``ValueError`` too, so a rule model's validators raise them directly; the loader finds the
class again in pydantic's error and raises it with the file and the rule located.
"""

from __future__ import annotations

from billing.core.errors import ConfigError


class AlertRuleError(ConfigError, ValueError):
    """A rules file or a rule is invalid (base class; also malformed fields and unknown keys)."""


class UnknownMeter(AlertRuleError):
    """A rule watches a meter that is not configured."""


class UnknownCustomer(AlertRuleError):
    """A rule names a customer the warehouse does not know."""


class InvalidThreshold(AlertRuleError):
    """A threshold (or a detector's score or limit) that is not a positive number."""


class DuplicateThreshold(AlertRuleError):
    """A rule lists the same threshold twice."""


class DuplicateRule(AlertRuleError):
    """Two rules share an id."""


class UnreachableRule(AlertRuleError):
    """A rule that can never fire (it would stay silent forever)."""


class InvalidWebhook(AlertRuleError):
    """A webhook that is not an absolute http(s) URL."""


class UnknownRule(AlertRuleError):
    """No stored rule has the id (or it was deleted)."""


class CustomerChange(AlertRuleError):
    """An update of a stored rule names another customer."""
