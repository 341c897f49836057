"""Alert rules for the API: the stored rules through :class:`billing.alerts.rule_store.AlertRules`."""

from __future__ import annotations

from api.sessions import Session
from billing.alerts.rule_store import AlertRules, rule_files
from billing.core.alerts.rules import load_rules
from billing.core.meters import MeterSet
from billing.core.pricing import PlanCatalog
from billing.settings import Settings


def alert_rules(settings: Settings, meters: MeterSet, catalog: PlanCatalog) -> Session[AlertRules]:
    """The :class:`AlertRules` of one API worker; ids of the configured rules files stay reserved."""
    files = load_rules(rule_files(settings), meters=meters, catalog=catalog)
    return Session(lambda: AlertRules(settings, meters=meters, catalog=catalog, files=files), AlertRules.close)
