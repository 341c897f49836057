"""Alert rules per customer in the warehouse table ``alert_rules``: create, read, list, update, delete.

The API and the CLI write them, `billing alerts scan` reads them besides the rules files. A table and
not a compacted topic, like the report jobs: the API, the CLI, the scan and SQL read it directly and it
survives restarts. Every change is a row; the highest version per rule id is current, a delete is a
row with ``deleted = 1`` (an id becomes free again after its rule was deleted).

Ids are unique among the stored rules and the configured rules files (``BILLING_ALERT_RULES_FILE``,
default the example rules): creating a rule with an id either already uses is refused. A rules file
given to a scan that reuses a stored rule's id makes that scan refuse to run (DuplicateRule), nothing
published. Two creates of the same id racing through different API workers may both succeed; the
later write wins (ClickHouse has no transactions; generated ids never collide).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from billing.core.alerts.errors import DuplicateRule, UnknownCustomer, UnknownRule
from billing.core.alerts.rules import EXAMPLE_RULES, AnyRule, RuleSet, load_rules
from billing.core.alerts.stored import StoredRule, customer_rule, same_customer
from billing.core.meters import MeterSet
from billing.core.pricing.catalog import PlanCatalog
from billing.invoicing.store import Store
from billing.settings import Settings
from billing.warehouse import facts
from billing.warehouse.client import client

_COLUMNS = facts.COLUMNS["alert_rules"]


def rule_files(settings: Settings) -> list[Path]:
    """The configured rules files: ``BILLING_ALERT_RULES_FILE``, or the example rules."""
    return [settings.alert_rules_file or EXAMPLE_RULES]


@dataclass(frozen=True)
class RuleRow:
    """Who a stored rule belongs to and its current version, read without validating the rule (so a rule the
    configuration no longer accepts can still be replaced or deleted)."""

    rule_id: str
    customer_id: str
    created_at: datetime
    version: int


class RuleStore:
    """The current stored rules in ``database``, validated against ``meters`` and ``catalog`` when read."""

    def __init__(self, ch, database: str, *, meters: MeterSet, catalog: PlanCatalog):
        self.ch = ch
        self.db = database
        self.meters = meters
        self.catalog = catalog

    def get(self, rule_id: str) -> StoredRule | None:
        """The rule ``rule_id`` (None when there is none or it was deleted)."""
        found = self._select("AND rule_id = {id:String}", {"id": rule_id})
        return found[0] if found else None

    def row(self, rule_id: str) -> RuleRow | None:
        """The owner and version of rule ``rule_id`` (None when there is none or it was deleted)."""
        rows = self.ch.query(f"SELECT rule_id, customer_id, created_at, version FROM {self.db}.alert_rules FINAL "
                             "WHERE deleted = 0 AND rule_id = {id:String}", parameters={"id": rule_id}).result_rows
        return RuleRow(*rows[0]) if rows else None

    def list(self, *, customers: Collection[str] | None = None, after: str = "", limit: int | None = None) -> list[StoredRule]:
        """Rules ordered by id after ``after``: of ``customers`` when given (None: every customer's), at most ``limit``."""
        where, params = "AND rule_id > {after:String}", {"after": after}
        if customers is not None:
            if not customers:
                return []
            where += " AND has({customers:Array(String)}, customer_id)"
            params["customers"] = sorted(customers)
        return self._select(f"{where} ORDER BY rule_id" + (f" LIMIT {int(limit)}" if limit is not None else ""), params)

    def write(self, stored: StoredRule) -> StoredRule:
        """Record a change of ``stored``; returns it."""
        self._insert(facts.alert_rule_rows(stored))
        return stored

    def delete(self, row: RuleRow, *, by: str, now: datetime) -> None:
        """Record the deletion of the rule of ``row``."""
        self._insert(facts.alert_rule_deletion(row.rule_id, row.customer_id, row.created_at, by=by, at=now,
                                               version=_version(now, row)))

    def _insert(self, rows: facts.Rows) -> None:
        self.ch.insert(f"{self.db}.alert_rules", rows["alert_rules"], column_names=_COLUMNS)

    def _select(self, tail: str, params: dict[str, Any]) -> list[StoredRule]:
        rows = self.ch.query(f"SELECT {', '.join(_COLUMNS)} FROM {self.db}.alert_rules FINAL WHERE deleted = 0 {tail}",
                             parameters=params).result_rows
        return [self._stored(row) for row in rows]

    def _stored(self, row: tuple) -> StoredRule:
        rule_id, customer_id, _kind, definition, created_at, updated_at, updated_by, _deleted, version = row
        document = {**orjson.loads(definition), "id": rule_id, "customer_id": customer_id}
        _, rule = customer_rule(document, f"stored rule {rule_id!r} (update or delete it)", meters=self.meters,
                                catalog=self.catalog)
        return StoredRule(rule, customer_id, created_at, updated_at, updated_by, version)


def _version(now: datetime, after: RuleRow | None = None) -> int:
    """Microseconds of ``now``, above the version of the change ``after`` it."""
    micros = int(now.timestamp() * 1_000_000)
    return max(micros, after.version + 1) if after else micros


class AlertRules:
    """Create, read, update and delete stored rules against the warehouse of ``settings``; ids stay unique
    among them and the rules of ``files``."""

    def __init__(self, settings: Settings, *, meters: MeterSet, catalog: PlanCatalog, files: RuleSet):
        ch = client(settings)
        self.store = RuleStore(ch, settings.clickhouse_database, meters=meters, catalog=catalog)
        self.billing = Store(ch, settings.clickhouse_database)
        self.files = files

    def get(self, rule_id: str) -> StoredRule:
        """The stored rule ``rule_id``; :class:`UnknownRule` when there is none."""
        found = self.store.get(rule_id)
        if found is None:
            raise UnknownRule(f"no alert rule {rule_id!r}; `billing alerts rules list` shows the stored rules")
        return found

    def create(self, customer_id: str, rule: AnyRule, *, by: str, now: datetime) -> StoredRule:
        """Store a new rule of ``customer_id``; :class:`UnknownCustomer` or :class:`DuplicateRule` (id taken)."""
        if rule.id in self.files.rules or self.store.row(rule.id) is not None:
            raise DuplicateRule(f"rule id {rule.id!r} is taken (by a stored rule or a rules file); choose another id, "
                                "or leave id out for a generated one")
        if customer_id not in self.billing.customers([customer_id]):
            raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse")
        return self.store.write(StoredRule(rule, customer_id, now, now, by, _version(now)))
    def owned(self, rule_id: str) -> RuleRow:
        """Owner and version of the stored rule ``rule_id``; :class:`UnknownRule` when there is none."""
        found = self.store.row(rule_id)
        if found is None:
            raise UnknownRule(f"no alert rule {rule_id!r}; `billing alerts rules list` shows the stored rules")
        return found

    def update(self, row: RuleRow, customer_id: str, rule: AnyRule, *, by: str, now: datetime) -> StoredRule:
        """Replace the rule of ``row`` with ``rule``; :class:`~billing.core.alerts.errors.CustomerChange` for another
        customer."""
        same_customer(row.rule_id, row.customer_id, customer_id)
        return self.store.write(StoredRule(rule, customer_id, row.created_at, now, by, _version(now, row)))

    def delete(self, row: RuleRow, *, by: str, now: datetime) -> None:
        """Delete the rule of ``row`` (alerts it fired stay)."""
        self.store.delete(row, by=by, now=now)

    def close(self) -> None:
        """Close the warehouse session."""
        self.store.ch.close()


def scan_rules(settings: Settings, files: list[Path], *, meters: MeterSet, catalog: PlanCatalog) -> RuleSet:
    """The rules of ``files`` and every stored rule; a stored rule reusing a file rule's id raises :class:`DuplicateRule`."""
    rules = load_rules(files, meters=meters, catalog=catalog)
    stored = RuleStore(client(settings), settings.clickhouse_database, meters=meters, catalog=catalog).list()
    rules.add((item.rule for item in stored), "the alert_rules table (stored rules; rename the file's rule or delete the stored one)")
    return rules
