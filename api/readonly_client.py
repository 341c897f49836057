"""Read-only warehouse access of the API: blocking ClickHouse calls in a threadpool, failures as problems.

Each API worker shares one clickhouse-connect client of the read-only user (no session, so
concurrent requests do not contend for one), created on first use: the API starts and answers
ingest while the warehouse is down, and read endpoints answer 503 until it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from starlette.concurrency import run_in_threadpool

from api.problems import Problem
from billing.core.errors import ServiceUnavailable
from billing.settings import Settings
from billing.warehouse.client import client

T = TypeVar("T")

UNKNOWN_TABLE, UNKNOWN_DATABASE = 60, 81
CONNECT_TIMEOUT_S, QUERY_TIMEOUT_S = 3, 30


def unavailable(detail: str) -> Problem:
    """The 503 every read endpoint answers when the warehouse cannot serve it."""
    return Problem(503, detail, kind="warehouse-unavailable", headers={"Retry-After": "5"})


class Warehouse:
    """The warehouse database of ``settings``, read as the read-only user."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = settings.clickhouse_database
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _connected(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = client(self.settings, readonly=True, autogenerate_session_id=False,
                                      connect_timeout=CONNECT_TIMEOUT_S, send_receive_timeout=QUERY_TIMEOUT_S)
            return self._client

    def guarded(self, work: Callable[..., T], *args) -> T:
        """``work(*args)``; warehouse failures become a 503 problem."""
        url = self.settings.clickhouse_url
        try:
            return work(*args)
        except ServiceUnavailable as exc:
            raise unavailable(f"the warehouse is unavailable: {exc}") from None
        except OperationalError as exc:
            raise unavailable(f"the warehouse at {url} did not answer ({exc.__class__.__name__}); "
                              "retry shortly, or check `billing status`") from None
        except DatabaseError as exc:
            if exc.code in (UNKNOWN_TABLE, UNKNOWN_DATABASE):
                raise unavailable(f"the warehouse at {url} has no billing schema in database {self.db!r}; "
                                  "run `billing warehouse migrate`") from None
            raise

    async def run(self, work: Callable[..., T], *args) -> T:
        """:meth:`guarded` in the threadpool, so the event loop never waits on the warehouse."""
        return await run_in_threadpool(self.guarded, work, *args)

    async def read(self, query: Callable[..., T], *args, **kwargs) -> T:
        """``query(client, database, *args, **kwargs)`` through :meth:`run`."""
        return await self.run(lambda: query(self._connected(), self.db, *args, **kwargs))

    def close(self) -> None:
        """Close the client, if one was opened."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
