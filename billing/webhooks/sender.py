"""One signed POST of a webhook to an endpoint, and what came of it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from billing.core.webhooks.endpoints import Endpoint
from billing.core.webhooks.signing import sign

USER_AGENT = "billing-pipeline-webhooks/1"
ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    """An attempt's result: 2xx is delivered; anything else (or no answer) failed with ``error``."""

    status_code: int | None
    error: str | None
    latency_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


def http_client(timeout_s: float, connections: int) -> httpx.Client:
    """The HTTP client of the senders: the whole exchange within ``timeout_s``, no redirects followed
    (a redirect is not a delivery; the endpoint URL should be the final one)."""
    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


def post(client: httpx.Client, endpoint: Endpoint, event_id: str, body: bytes) -> Outcome:
    """POST ``body`` to ``endpoint``, signed now; never raises for the endpoint's failures."""
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **sign(endpoint.secret, event_id, int(time.time()), body)}
    started = time.perf_counter()
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Outcome(None, f"timed out ({type(exc).__name__})", _since(started))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX], _since(started))
    latency = _since(started)
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, None, latency)
    return Outcome(response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"[:ERROR_MAX], latency)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
