"""The one place librdkafka clients are configured.

Every producer of the project (API, simulator, invoice publisher, the worker's changelog) is
durable: ``acks=all`` and idempotent, lz4-compressed unless told otherwise; callers add only their
own tuning (linger, buffers, timeouts, callbacks). Connection settings every client shares
(bootstrap servers today; TLS/SASL for a real cluster belong here too) come from :func:`client_config`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

DURABILITY = {"acks": "all", "enable.idempotence": True}

QUIET = logging.getLogger("billing.kafka.quiet")
"""The ``logger`` of clients whose failures reach their caller as exceptions (admin, offset reads):
without one, librdkafka prints every refused connection to stderr, once per broker and retry."""
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def client_config(bootstrap: str, tuning: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings of any client (admin, consumer, producer) of the cluster at ``bootstrap``."""
    return {"bootstrap.servers": bootstrap, **(tuning or {})}


def producer_config(bootstrap: str, tuning: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings of a durable producer; ``tuning`` may not weaken :data:`DURABILITY`."""
    weakened = sorted(key for key in DURABILITY if key in (tuning or {}) and tuning[key] != DURABILITY[key])
    if weakened:
        raise ValueError(f"producer tuning may not change {', '.join(weakened)}")
    return client_config(bootstrap, {"compression.type": "lz4", **DURABILITY, **(tuning or {})})
