"""Keep-alive connections are asked to reconnect now and then, so that several workers share the load.

``billing api --workers N`` runs N processes that accept connections from one listening socket. A
worker accepts every connection waiting when it wakes up, so a client that opens its keep-alive
connections at once (a connection pool) often lands mostly on one worker and stays there: with 8
connections, splits of 6:2 and 7:1 between two workers were the rule, and the busy worker capped
the throughput. After ``api_requests_per_connection`` requests on one connection the response
carries ``Connection: close`` (nginx calls this ``keepalive_requests``); the client reconnects,
and the worker that is free first accepts the new connection.
"""

from __future__ import annotations

from starlette.types import Message, Scope, Send

TRACKED = 10_000
"""Most connections counted at once; beyond, the counts start over (a connection is then asked to
reconnect a little later than its limit)."""


class ConnectionBudget:
    """Requests made on each keep-alive connection, counted per client address."""

    def __init__(self, limit: int, tracked: int = TRACKED):
        self.limit = limit
        self.tracked = tracked
        self.counts: dict[tuple, int] = {}

    def last_request(self, scope: Scope) -> bool:
        """Count a request on the connection of ``scope``; True when its response must close the
        connection (never with a limit of 0, or without a client address)."""
        client = scope.get("client")
        if not self.limit or client is None:
            return False
        client = tuple(client)
        count = self.counts.pop(client, 0) + 1
        if count >= self.limit:
            return True
        if len(self.counts) >= self.tracked:
            self.counts.clear()
        self.counts[client] = count
        return False


def closing(send: Send) -> Send:
    """``send`` with ``Connection: close`` added to the response headers."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await send(message)

    return send_closing
