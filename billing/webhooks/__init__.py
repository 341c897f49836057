"""Webhook delivery: `billing webhooks deliver` (the consumer that POSTs events to endpoints, :mod:`service`),
one signed POST (:mod:`sender`) and the delivery log in the warehouse (:mod:`log`).

The pure parts (endpoints, event mapping, signatures, backoff) are in ``billing/core/webhooks/``.
"""
