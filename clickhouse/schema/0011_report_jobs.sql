-- Report jobs (`POST /v1/reports`, `billing reports request`): one row per state change of a job, the
-- highest version is its current state (read with FINAL). The request writes the queued state with
-- version 0, so it never hides what a report worker wrote; workers write running (with progress),
-- completed, failed and expired states. The queue itself is the report jobs topic.

CREATE TABLE IF NOT EXISTS ${database}.report_jobs
(
    job_id          String COMMENT 'rpt- + 24 hex digits, derived from the requester and its idempotency key',
    customer_id     String,
    period          String COMMENT 'the month reported, YYYY-MM',
    kind            LowCardinality(String),
    format          LowCardinality(String),
    requested_by    String COMMENT 'API key id, or cli',
    idempotency_key String,
    requested_at    DateTime64(3, 'UTC'),
    status          LowCardinality(String) COMMENT 'queued, running, completed, failed or expired',
    progress        UInt8 COMMENT 'percent done (100 when completed)',
    attempts        UInt16 COMMENT 'attempts started; bounded by BILLING_REPORT_MAX_ATTEMPTS',
    error           Nullable(String) COMMENT 'why it failed (or the last passing error of a retried attempt)',
    file            Nullable(String) COMMENT 'file name in the reports folder, while it is kept',
    updated_at      DateTime64(6, 'UTC'),
    finished_at     Nullable(DateTime64(6, 'UTC')),
    version         UInt64 COMMENT '0 for the queued state, then microseconds of the change'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY job_id
COMMENT 'State of every report job, latest version per job id.';
