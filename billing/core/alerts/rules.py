"""Alert rules as data, loaded from YAML or JSON files like the plan catalog.

A rules file holds a ``rules`` list; every rule has an ``id`` and a ``kind`` (usage rules a ``meter``),
and may name the ``customers`` it watches (absent: every customer) and a ``webhook`` (an http(s) URL)::

    rules:
      - id: api-allowance
        kind: usage_threshold
        meter: api_calls
        unit: percent            # of the units the customer's plan includes; or `units`
        thresholds: [50, 80, 100]
      - id: api-anomaly
        kind: usage_anomaly
        meter: api_calls
        weeks: 4                 # compare an hour with the same hour of the last 4 weeks
        min_history: 3           # cold start: no verdict before 3 of them exist
      - id: reminders
        kind: payment_due
        days_before: [7, 1]      # billing.payment.due 7 and 1 days before an open invoice is due
        days_overdue: [1, 14]    # billing.payment.overdue 1 and 14 days after
      - id: credit-low
        kind: credit_balance
        below: [100, 20]         # billing.credit.low once each per month, in the credits' currency
      - id: spend
        kind: spend_threshold
        unit: percent_of_minimum # or amount (in the customer's currency)
        thresholds: [80, 100]    # spend so far in the month, priced by the invoicing engine's preview

Unknown keys are errors. Every problem raises a specific :class:`~billing.core.alerts.errors.AlertRuleError`
naming the file, the rule and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from billing.core.alerts.errors import (
    AlertRuleError,
    DuplicateRule,
    DuplicateThreshold,
    InvalidThreshold,
    InvalidWebhook,
    UnknownMeter,
    UnreachableRule,
)
from billing.core.contracts import Id as CustomerId
from billing.core.contracts import SpendUnit, ThresholdUnit, clip
from billing.core.meters import MeterSet
from billing.core.pricing.catalog import PlanCatalog, data_files, read_document
from billing.core.pricing.plans import Id as RuleId
from billing.core.webhooks.endpoints import is_http_url

EXAMPLE_RULES = Path(str(resources.files("billing.core.alerts") / "rules.yaml"))
"""The example rules shipped as package data."""
MAX_LISTED = 20
"""Problems listed in one error; more are counted."""
LARGEST = Decimal(10) ** 20
"""Thresholds are below this and have at most 9 decimal places, like the warehouse's usage totals."""


def _positive(value: Any) -> Decimal:
    """A threshold: a number (or a decimal string) above 0; anything else raises :class:`InvalidThreshold`."""
    number = None
    if isinstance(value, int | Decimal | float | str) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise InvalidThreshold(f"{clip(value)} is not a number; write a plain number such as 80 or 1500.5")
    if number <= 0:
        raise InvalidThreshold(f"{value} is not positive; thresholds and limits are numbers above 0")
    if number >= LARGEST or number.as_tuple().exponent < -9:
        raise InvalidThreshold(f"{value} is out of range; write a number below 10^20 with at most 9 decimal places")
    return number


Positive = Annotated[Decimal, BeforeValidator(_positive)]


def _webhook(value: Any) -> str:
    url = str(value)
    if not is_http_url(url):
        raise InvalidWebhook(f"webhook {clip(value)} is not an absolute http(s) URL; write e.g. https://example.com/hooks/billing")
    return url


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    name: str | None = Field(default=None, description="Shown in lists; defaults to the id.")
    customers: tuple[CustomerId, ...] | None = Field(default=None, description="Customers watched; absent = every one.")
    webhook: Annotated[str, BeforeValidator(_webhook)] | None = Field(default=None, description="http(s) URL alerts go to.")

    @field_validator("customers")
    @classmethod
    def _watches_someone(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise UnreachableRule("an empty customers list watches nobody; list customer ids or leave customers out")
        return value

    @property
    def label(self) -> str:
        """Name shown in lists."""
        return self.name or self.id

    def watches(self, customer_id: str) -> bool:
        """Whether the rule applies to ``customer_id``."""
        return self.customers is None or customer_id in self.customers


def _thresholds(value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    """Thresholds ascending; none or one listed twice raise."""
    if not value:
        raise UnreachableRule("no thresholds, so the rule never fires; list one or more, e.g. [50, 80, 100]")
    seen: dict[Decimal, Decimal] = {}
    for threshold in value:
        if threshold in seen:
            raise DuplicateThreshold(f"threshold {threshold} repeats {seen[threshold]}; list each threshold once")
        seen[threshold] = threshold
    return tuple(sorted(value))


class _MeterRule(_Rule):
    meter: str = Field(description="The meter watched, per customer.")

    @field_validator("meter")
    @classmethod
    def _known_meter(cls, value: str, info: ValidationInfo) -> str:
        meters: MeterSet = info.context["meters"]
        if value not in meters:
            raise UnknownMeter(f"unknown meter {clip(value)}; configured meters: {', '.join(meters.names)}")
        return value


def _days(value: Any) -> int:
    """A whole number of days above 0."""
    number = _positive(value)
    if number != number.to_integral_value():
        raise InvalidThreshold(f"{value} is not a whole number of days; write e.g. 7")
    return int(number)


class UsageThresholdRule(_MeterRule):
    """Usage of ``meter`` in the billing period reaching each of ``thresholds`` (fired once each per period).

    ``unit: units`` counts units of the meter; ``unit: percent`` is percent of the units the
    customer's plan includes (a customer whose plan includes none is not watched by the rule).
    """

    kind: Literal["usage_threshold"]
    unit: ThresholdUnit = ThresholdUnit.UNITS
    thresholds: tuple[Positive, ...]

    _distinct = field_validator("thresholds")(classmethod(lambda cls, value: _thresholds(value)))

    @model_validator(mode="after")
    def _reachable(self, info: ValidationInfo) -> UsageThresholdRule:
        catalog: PlanCatalog = info.context["catalog"]
        if self.unit is ThresholdUnit.PERCENT and not any(plan.included_units(self.meter) for plan in catalog.plans.values()):
            raise UnreachableRule(f"no plan includes units of {self.meter}, so a percent of them is never reached; "
                                  "use unit: units with absolute thresholds, or add free_units to a plan's charge")
        return self


class Direction(StrEnum):
    """Which anomalies a rule reports."""

    SPIKES = "spikes"
    DROPS = "drops"
    BOTH = "both"


class Scale(StrEnum):
    """How an anomaly rule measures distances to the baseline."""

    LINEAR = "linear"
    LOG = "log"


class UsageAnomalyRule(_MeterRule):
    """An hour of usage of ``meter`` far from the customer's own baseline for that hour of the week.

    The baseline is the median of the same hour in the last ``weeks`` weeks (an hour before the
    customer's first usage is no history); with fewer than ``min_history`` of them the rule stays
    silent (cold start). An hour is anomalous when its robust z-score (distance to the median over
    1.4826 x the median absolute deviation, or x the series' noise when that is larger) is at least
    ``score`` and the change is material: at least ``min_change_percent`` of the median and
    ``min_delta`` units. A drop to zero at an hour
    that always had at least ``min_delta`` units is an anomaly whatever the score.

    ``scale: log`` takes the score on ``ln(value + min_delta)`` instead of the value: usage varies
    multiplicatively, and on that scale a drop to a tenth is as far from the baseline as a tenfold
    spike (on the linear scale no drop can score more than 1 / (1.4826 x noise)). A series whose noise
    is above ``max_noise`` (relative on the linear scale, in ln units on the log scale) is too erratic
    to judge: the rule stays silent on it.
    """

    kind: Literal["usage_anomaly"]
    weeks: int = Field(default=4, ge=1, le=52)
    min_history: int = Field(default=3, ge=1)
    score: Positive = Decimal(5)
    min_change_percent: Positive = Decimal(30)
    min_delta: Positive = Decimal(1)
    direction: Direction = Direction.BOTH
    scale: Scale = Scale.LINEAR
    max_noise: Positive | None = None

    @model_validator(mode="after")
    def _reachable(self) -> UsageAnomalyRule:
        if self.min_history > self.weeks:
            raise UnreachableRule(f"min_history {self.min_history} is more than the {self.weeks} weeks compared, so the "
                                  f"rule never has enough history; set min_history <= weeks")
        if self.direction is Direction.DROPS and self.min_change_percent > 100:
            raise UnreachableRule(f"usage cannot drop by more than 100 %, so min_change_percent {self.min_change_percent} "
                                  "never fires for drops; set it to 100 or less")
        return self

    def reports(self, spike: bool) -> bool:
        """Whether the rule reports a spike (``spike``) or a drop."""
        return self.direction is Direction.BOTH or (self.direction is Direction.SPIKES) == spike


class PaymentDueRule(_Rule):
    """Reminders about a customer's open (finalized, unpaid) invoices, from the invoice state.

    ``days_before``: ``billing.payment.due`` once each that many days before the invoice is due (not
    after it is due); ``days_overdue``: ``billing.payment.overdue`` once each that many days after.
    """

    kind: Literal["payment_due"]
    days_before: tuple[Annotated[int, BeforeValidator(_days)], ...] = ()
    days_overdue: tuple[Annotated[int, BeforeValidator(_days)], ...] = ()

    @field_validator("days_before", "days_overdue")
    @classmethod
    def _once_each(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        twice = sorted({day for day in value if value.count(day) > 1})
        if twice:
            raise DuplicateThreshold(f"{twice[0]} days is listed twice; list each number of days once")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _reachable(self) -> PaymentDueRule:
        if not self.days_before and not self.days_overdue:
            raise UnreachableRule("no days_before and no days_overdue, so the rule never fires; list e.g. days_before: [7]")
        return self


class CreditBalanceRule(_Rule):
    """A customer's prepaid credit balance (credits granted, less what its invoices drew) below each
    amount of ``below``, in the currency of the credits; each fires once per calendar month.
    Customers who never got a credit are not watched."""

    kind: Literal["credit_balance"]
    below: tuple[Positive, ...]

    @field_validator("below")
    @classmethod
    def _amounts(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if not value:
            raise UnreachableRule("no amounts, so the rule never fires; list one or more, e.g. below: [100, 20]")
        twice = sorted({amount for amount in value if value.count(amount) > 1})
        if twice:
            raise DuplicateThreshold(f"amount {twice[0]} is listed twice; list each amount once")
        return tuple(sorted(value))


class SpendThresholdRule(_Rule):
    """Spend so far in the billing period (the month), priced by the invoicing engine's preview, reaching
    each of ``thresholds``: amounts in the customer's currency (``unit: amount``), or percent of the
    monthly minimum commitment of the customer's plan (``unit: percent_of_minimum``; a customer whose
    plan has none is not watched). Each fires once per period."""

    kind: Literal["spend_threshold"]
    unit: SpendUnit = SpendUnit.AMOUNT
    thresholds: tuple[Positive, ...]

    _distinct = field_validator("thresholds")(classmethod(lambda cls, value: _thresholds(value)))

    @model_validator(mode="after")
    def _reachable(self, info: ValidationInfo) -> SpendThresholdRule:
        catalog: PlanCatalog = info.context["catalog"]
        if self.unit is SpendUnit.PERCENT_OF_MINIMUM and not any(plan.minimum_commitment for plan in catalog.plans.values()):
            raise UnreachableRule("no plan has a minimum_commitment, so a percent of it is never reached; "
                                  "use unit: amount, or give a plan a minimum_commitment")
        return self


AnyRule = UsageThresholdRule | UsageAnomalyRule | PaymentDueRule | CreditBalanceRule | SpendThresholdRule
R = TypeVar("R", UsageThresholdRule, UsageAnomalyRule, PaymentDueRule, CreditBalanceRule, SpendThresholdRule)
MeterRule = UsageThresholdRule | UsageAnomalyRule
Rule = Annotated[AnyRule, Field(discriminator="kind")]
RULE_KINDS = ("usage_threshold", "usage_anomaly", "payment_due", "credit_balance", "spend_threshold")


class RulesFile(BaseModel):
    """The content of one rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule]


@dataclass
class RuleSet:
    """Rules by id, merged from one or more files."""

    rules: dict[str, AnyRule] = field(default_factory=dict)

    def __iter__(self) -> Iterator[AnyRule]:
        return iter(self.rules.values())

    def __len__(self) -> int:
        return len(self.rules)

    def add(self, rules: Iterable[AnyRule], source: str) -> None:
        """Merge ``rules`` read from ``source``; an id defined twice raises :class:`DuplicateRule`."""
        for rule in rules:
            if rule.id in self.rules:
                raise DuplicateRule(f"{source}: rule {rule.id!r} is defined twice; give each rule its own id")
            self.rules[rule.id] = rule

    def watching(self, customer_id: str, meter: str) -> list[MeterRule]:
        """The rules that watch ``meter`` of ``customer_id``."""
        return [rule for rule in self.of_meters() if rule.meter == meter and rule.watches(customer_id)]

    def of_meters(self) -> list[MeterRule]:
        """The usage rules (those that watch a meter)."""
        return [rule for rule in self if isinstance(rule, UsageThresholdRule | UsageAnomalyRule)]

    def of_kind(self, kind: type[R]) -> list[R]:
        """The rules of one kind."""
        return [rule for rule in self if isinstance(rule, kind)]

    def customers(self) -> set[str]:
        """Every customer id some rule names."""
        return {customer for rule in self for customer in rule.customers or ()}


def parse_rules(document: Any, source: str, *, meters: MeterSet, catalog: PlanCatalog) -> list[AnyRule]:
    """Validate a parsed rules document against the configured ``meters`` and plan ``catalog``.

    Every problem is listed, located, in one error whose class is that of the first problem.
    """
    if not isinstance(document, dict):
        raise AlertRuleError(f"{source}: expected a mapping with a `rules:` list at the top")
    try:
        return RulesFile.model_validate(document, context={"meters": meters, "catalog": catalog}).rules
    except ValidationError as exc:
        raise _located(exc, document, source) from None


def parse_rule(document: Any, source: str, *, meters: MeterSet, catalog: PlanCatalog) -> AnyRule:
    """Validate one rule document (a rule of a rules file) like :func:`parse_rules`."""
    if not isinstance(document, dict):
        raise AlertRuleError(f"{source}: expected a mapping of the rule's fields (id, kind, ...)")
    try:
        return _ONE_RULE.validate_python(document, context={"meters": meters, "catalog": catalog})
    except ValidationError as exc:
        raise _located(exc, document, source) from None


_ONE_RULE: TypeAdapter[AnyRule] = TypeAdapter(Rule)


def _located(exc: ValidationError, document: Any, source: str) -> AlertRuleError:
    """Every problem of ``exc``, located in ``document``, in one error whose class is that of the first problem."""
    errors = exc.errors()
    first = errors[0].get("ctx", {}).get("error")
    kind = type(first) if isinstance(first, AlertRuleError) else AlertRuleError
    listed = [_describe(error, document) for error in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        listed.append(f"and {len(errors) - MAX_LISTED} more problem(s)")
    return kind(f"{source}: " + "; ".join(listed))


def _key(key: Any) -> str:
    """A field name as written, or clipped when it is long."""
    return str(key) if len(str(key)) <= 64 else clip(str(key))


def load_rules(paths: Iterable[Path], *, meters: MeterSet, catalog: PlanCatalog) -> RuleSet:
    """Load and merge rules files; a directory means every ``*.yaml``/``*.yml``/``*.json`` in it."""
    rules = RuleSet()
    for path in data_files(paths):
        rules.add(parse_rules(read_document(path), str(path), meters=meters, catalog=catalog), str(path))
    return rules


def _describe(error: dict, document: Any) -> str:
    """``rule 'api' > thresholds[2]: message`` for one pydantic error."""
    parts: list[str] = []
    node: Any = document
    for key in error["loc"]:
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
            if parts == ["rules"]:
                rule_id = node.get("id") if isinstance(node, dict) else None
                parts = [f"rule {clip(rule_id)}" if isinstance(rule_id, str) else f"rule {key + 1}"]
            else:
                parts[-1] += f"[{key + 1}]"
        elif isinstance(node, dict) and key in node:
            node = node[key]
            parts.append(_key(key))
        elif key not in RULE_KINDS:
            parts.append(_key(key))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (typo?)"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown rule kind; use one of: {', '.join(RULE_KINDS)}"
    elif error["type"] == "union_tag_not_found":
        message = f"kind is required; use one of: {', '.join(RULE_KINDS)}"
    return f"{' > '.join(parts) or 'top level'}: {message}"
