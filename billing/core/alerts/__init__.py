"""Alerts: rules as data and the pure logic that decides when they fire.

Modules: :mod:`rules` (rule models and the rules file loader), :mod:`errors` (one exception per
kind of bad rule), :mod:`stored` (rules of one customer as the API and CLI store them),
:mod:`thresholds` (which usage thresholds a step of the period's usage crosses), :mod:`anomaly` (an
hour against the same hour of past weeks, median/MAD) and :mod:`events` (fired alerts as
:class:`~billing.core.contracts.AlertEvent` with deterministic ids).
Webhook delivery of the alerts is in :mod:`billing.core.webhooks`; evaluation in the stream worker is not built yet.
"""
