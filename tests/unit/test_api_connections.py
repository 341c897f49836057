"""Keep-alive connections asked to reconnect after a number of requests (api.connections)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.connections import ConnectionBudget, closing
from billing.settings import Settings


def _scope(port: int) -> dict:
    return {"type": "http", "client": ("127.0.0.1", port)}


def test_every_limit_th_request_of_a_connection_closes_it():
    budget = ConnectionBudget(3)
    assert [budget.last_request(_scope(1)) for _ in range(7)] == [False, False, True, False, False, True, False]


def test_connections_are_counted_apart():
    budget = ConnectionBudget(2)
    assert budget.last_request(_scope(1)) is False
    assert budget.last_request(_scope(2)) is False
    assert budget.last_request(_scope(1)) is True
    assert budget.last_request(_scope(2)) is True


def test_no_limit_or_no_client_address_never_closes():
    assert not any(ConnectionBudget(0).last_request(_scope(1)) for _ in range(10))
    assert not any(ConnectionBudget(1).last_request({"type": "http", "client": None}) for _ in range(10))


def test_counts_start_over_beyond_the_tracked_connections():
    budget = ConnectionBudget(2, tracked=3)
    for port in range(3):
        budget.last_request(_scope(port))
    assert len(budget.counts) == 3
    budget.last_request(_scope(99))
    assert list(budget.counts) == [("127.0.0.1", 99)]


def test_closing_adds_the_header_to_the_response_start_only():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def respond():
        wrapped = closing(send)
        await wrapped({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"2")]})
        await wrapped({"type": "http.response.body", "body": b"{}"})

    asyncio.run(respond())
    assert sent[0]["headers"] == [(b"content-length", b"2"), (b"connection", b"close")]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


@pytest.mark.parametrize(("workers", "expected"), [(2, [None, "close", None, "close"]), (1, [None] * 4)])
def test_only_an_api_of_several_workers_asks_clients_to_reconnect(tmp_path, workers, expected):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", api_workers=workers,
                        api_requests_per_connection=2)
    with TestClient(create_app(settings)) as client:
        assert [client.get("/healthz").headers.get("connection") for _ in range(4)] == expected
