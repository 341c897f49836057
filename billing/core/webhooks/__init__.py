"""Webhooks: endpoints as data and the pure rules of delivery.

Modules: :mod:`errors` (one exception per kind of bad endpoint or signature), :mod:`endpoints`
(endpoint models and the endpoints file loader), :mod:`events` (topic messages -> webhook events
with deterministic ids), :mod:`signing` (Standard Webhooks signatures and their verification) and
:mod:`retry` (the exponential backoff schedule with jitter). Sending, the delivery log and the
consumer live in ``billing/webhooks/``.
"""
