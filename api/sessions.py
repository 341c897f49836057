"""Writable warehouse sessions of one API worker (report jobs, alert rules): created on first use (the API
starts while the warehouse is down) and used by one request at a time: these writes are rare."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


class Session(Generic[S]):
    """The object ``open()`` makes, shared by the requests of one API worker; ``close(it)`` ends it."""

    def __init__(self, open_: Callable[[], S], close: Callable[[S], None]):
        self._open = open_
        self._close = close
        self._it: S | None = None
        self._lock = threading.Lock()

    def call(self, work: Callable[[S], T]) -> T:
        """``work(it)`` (blocking; run it in the threadpool)."""
        with self._lock:
            if self._it is None:
                self._it = self._open()
            return work(self._it)

    def close(self) -> None:
        """Close the session, if one was opened."""
        with self._lock:
            if self._it is not None:
                self._close(self._it)
                self._it = None
