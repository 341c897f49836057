"""Report jobs for the API: requests and job reads through :class:`billing.reports.requests.Reports`.

One warehouse session per API worker, created on first use (the API starts while the warehouse is
down) and used by one request at a time: report requests are rare.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from billing.reports.requests import Reports
from billing.settings import Settings

T = TypeVar("T")


class ReportJobs:
    """The :class:`Reports` of one API worker."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._reports: Reports | None = None
        self._lock = threading.Lock()

    def call(self, work: Callable[[Reports], T]) -> T:
        """``work(reports)`` (blocking; run it in the threadpool)."""
        with self._lock:
            if self._reports is None:
                self._reports = Reports(self.settings)
            return work(self._reports)

    def close(self) -> None:
        """Close the warehouse session, if one was opened."""
        with self._lock:
            if self._reports is not None:
                self._reports.jobs.ch.close()
                self._reports = None
