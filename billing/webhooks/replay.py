"""`billing webhooks replay`: send one logged delivery again, now, to its endpoint as currently configured."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.core.errors import ConfigError, PlatformError
from billing.core.webhooks.endpoints import EndpointSet
from billing.settings import Settings
from billing.webhooks.log import Attempt, DeliveryLog, State
from billing.webhooks.sender import http_client, post


class ReplayFailed(PlatformError):
    """The replayed attempt failed too (it is logged; the delivery stays dead)."""


def replay(settings: Settings, endpoints: EndpointSet, delivery_id: str) -> Attempt:
    """POST the logged body of ``delivery_id`` once more (signed now, under the endpoint's current URL and
    secret) and log it as the next attempt: ``delivered``, or ``dead`` when it failed (no automatic retries).

    Raises :class:`ConfigError` for an unknown delivery or endpoint and :class:`ReplayFailed` when the
    endpoint did not accept it.
    """
    log = DeliveryLog(settings)
    found = log.deliveries(delivery_id=delivery_id, limit=1)
    if not found:
        raise ConfigError(f"no delivery {delivery_id!r} in the delivery log; `billing webhooks deliveries` lists them")
    delivery = found[0]
    endpoint = endpoints[delivery.endpoint_id]
    with http_client(settings.webhook_timeout_s, 1) as http:
        outcome = post(http, endpoint, delivery.event.id, delivery.event.body)
    attempt = Attempt(delivery_id, delivery.attempts + 1, delivery.event, endpoint,
                      State.DELIVERED if outcome.ok else State.DEAD, outcome, datetime.now(UTC))
    log.write([attempt])
    if not outcome.ok:
        raise ReplayFailed(f"delivery {delivery_id} to {endpoint.url} failed again ({outcome.error}); logged as attempt "
                           f"{attempt.attempt}, still dead")
    return attempt
