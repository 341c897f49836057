"""The ``report_jobs`` table: every state a job went through, the latest (highest version) is current."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from billing.core.reports.jobs import JobState
from billing.warehouse import facts

_COLUMNS = facts.COLUMNS["report_jobs"]


class JobStore:
    """Report job states in ``database``."""

    def __init__(self, ch: Client, database: str):
        self.ch = ch
        self.db = database

    def get(self, job_id: str) -> JobState | None:
        """The current state of ``job_id``, or None."""
        found = self._select("WHERE job_id = {job:String}", {"job": job_id})
        return found[0] if found else None

    def list(self, customer: str | None = None, limit: int = 50) -> list[JobState]:
        """The latest jobs (of ``customer``), newest request first."""
        where = "WHERE customer_id = {customer:String}" if customer else ""
        return self._select(f"{where} ORDER BY requested_at DESC, job_id LIMIT {int(limit)}", {"customer": customer})

    def completed_before(self, moment_ms: int) -> list[JobState]:
        """Completed jobs that finished before ``moment_ms`` (epoch milliseconds)."""
        return self._select("WHERE status = 'completed' AND finished_at < fromUnixTimestamp64Milli({t:Int64}, 'UTC')",
                            {"t": moment_ms})

    def write(self, state: JobState) -> JobState:
        """Record ``state``; returns it."""
        self.ch.insert(f"{self.db}.report_jobs", facts.report_job_rows(state)["report_jobs"], column_names=_COLUMNS)
        return state

    def _select(self, tail: str, params: dict) -> list[JobState]:
        rows = self.ch.query(f"SELECT {', '.join(_COLUMNS)} FROM {self.db}.report_jobs FINAL {tail}", parameters=params)
        return [facts.report_job_state(row) for row in rows.result_rows]
