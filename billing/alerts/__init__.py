"""Alerts against the warehouse and the alerts topic: :mod:`scan` evaluates the alert rules over the
hourly usage rollups and makes every fired alert durable (the ``alerts`` table and topic).
The rules themselves are pure and live in :mod:`billing.core.alerts`."""
