"""The ``report_jobs`` table: every state a job went through, the latest (highest version) is current."""

from __future__ import annotations

from collections.abc import Collection

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

    def list(self, customer: str | None = None, limit: int = 50, *, customers: Collection[str] | None = None,
             after: JobState | None = None) -> list[JobState]:
        """The latest jobs, newest request first: of ``customer``, of any of ``customers`` when given (None: every
        job), requested before the job ``after`` (the previous page's last job) when given."""
        where, params = [], {}
        if customer:
            where.append("customer_id = {customer:String}")
            params["customer"] = customer
        if customers is not None:
            if not customers:
                return []
            where.append("has({customers:Array(String)}, customer_id)")
            params["customers"] = sorted(customers)
        if after is not None:
            where.append("(requested_at, job_id) < (fromUnixTimestamp64Milli({t:Int64}, 'UTC'), {after:String})")
            params |= {"t": round(after.job.requested_at.timestamp() * 1000), "after": after.job_id}
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._select(f"{clause} ORDER BY requested_at DESC, job_id DESC LIMIT {int(limit)}", params)

    def completed_before(self, moment_ms: int) -> list[JobState]:
        """Completed jobs that finished before ``moment_ms`` (epoch milliseconds)."""
        return self._select("WHERE status = 'completed' AND finished_at < fromUnixTimestamp64Milli({t:Int64}, 'UTC')",
                            {"t": moment_ms})

    def requested(self, requested_by: str, key_prefix: str) -> set[str]:
        """The ids of the jobs ``requested_by`` asked for with idempotency keys starting with ``key_prefix``."""
        rows = self.ch.query(f"SELECT DISTINCT job_id FROM {self.db}.report_jobs WHERE requested_by = {{by:String}} "
                             "AND startsWith(idempotency_key, {prefix:String})",
                             parameters={"by": requested_by, "prefix": key_prefix}).result_rows
        return {row[0] for row in rows}

    def write(self, state: JobState) -> JobState:
        """Record ``state``; returns it."""
        self.write_many([state])
        return state

    def write_many(self, states: list[JobState]) -> None:
        """Record ``states`` in one insert."""
        rows = [row for state in states for row in facts.report_job_rows(state)["report_jobs"]]
        self.ch.insert(f"{self.db}.report_jobs", rows, column_names=_COLUMNS)

    def _select(self, tail: str, params: dict) -> list[JobState]:
        rows = self.ch.query(f"SELECT {', '.join(_COLUMNS)} FROM {self.db}.report_jobs FINAL {tail}", parameters=params)
        return [facts.report_job_state(row) for row in rows.result_rows]
