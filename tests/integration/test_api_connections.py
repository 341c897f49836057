"""`billing api` with two uvicorn workers asks a keep-alive client to reconnect after
BILLING_API_REQUESTS_PER_CONNECTION requests, and the client goes on over a new connection."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from billing.platform.api_service import ApiService
from billing.settings import Settings
from tests.integration.streams_harness import free_port

pytestmark = pytest.mark.integration
LIMIT = 3


@pytest.fixture()
def api_server(settings: Settings, monkeypatch) -> Iterator[ApiService]:
    port = free_port()
    monkeypatch.setenv("BILLING_API_REQUESTS_PER_CONNECTION", str(LIMIT))
    service = ApiService(settings.model_copy(update={"api_port": port, "api_workers": 2}))
    assert service.start() is True
    yield service
    service.stop()


def test_a_connection_is_closed_by_the_server_after_its_requests(api_server: ApiService) -> None:
    conn = http.client.HTTPConnection(api_server.settings.api_host, api_server.settings.api_port, timeout=10)
    sockets, closes = [], []
    try:
        for _ in range(2 * LIMIT):
            conn.request("GET", "/healthz")
            sockets.append(conn.sock)
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b'{"status":"ok"}'
            closes.append(response.getheader("connection"))
    finally:
        conn.close()
    assert closes == [None, None, "close"] * 2
    assert len({id(sock) for sock in sockets}) == 2, "the client reconnected once, after the third request"
