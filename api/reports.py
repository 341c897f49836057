"""Report jobs for the API: requests and job reads through :class:`billing.reports.requests.Reports`."""

from __future__ import annotations

from api.sessions import Session
from billing.reports.requests import Reports
from billing.settings import Settings


def report_jobs(settings: Settings) -> Session[Reports]:
    """The :class:`Reports` of one API worker."""
    return Session(lambda: Reports(settings), lambda reports: reports.jobs.ch.close())
