-- Usage rollups and derived state written by the stream worker.
-- A rollup row is the FULL current value of one window with a version, in a ReplacingMergeTree
-- keyed by the window: re-writing a window (replay, late event, correction) replaces it and can
-- never double count. Read with FINAL (or argMax(value, version)).

CREATE TABLE IF NOT EXISTS ${database}.usage_rollups
(
    customer_id    String,
    meter          LowCardinality(String),
    window_seconds UInt32 COMMENT '60 (minute) or 3600 (hour)',
    window_start   DateTime('UTC'),
    group_key      String COMMENT 'canonical text of the meter group_by dimensions',
    dimensions     Map(LowCardinality(String), String),
    aggregation    LowCardinality(String),
    value          Decimal(38, 9),
    event_count    UInt64,
    version        UInt64 COMMENT 'monotonic per window; the highest wins',
    closed         UInt8 COMMENT '1 once the window is past its grace period',
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (customer_id, meter, window_seconds, window_start, group_key)
COMMENT 'Usage per customer x meter x dimensions x tumbling window (minute, hour).';

CREATE TABLE IF NOT EXISTS ${database}.payment_transactions
(
    transaction_id     String,
    invoice_id         String,
    customer_id        String,
    method             LowCardinality(String),
    amount             Decimal(38, 9),
    currency           LowCardinality(String),
    status             LowCardinality(String),
    last_failure       LowCardinality(Nullable(String)),
    attempts           UInt16,
    failures           UInt16,
    first_initiated_at DateTime64(3, 'UTC'),
    last_completed_at  Nullable(DateTime64(3, 'UTC')),
    succeeded_at       Nullable(DateTime64(3, 'UTC')),
    processing_seconds Nullable(Float64) COMMENT 'initiation to settlement of the last attempt',
    refunded_amount    Decimal(38, 9),
    disputed           UInt8,
    status_path        String COMMENT 'e.g. initiated>failed>initiated>succeeded',
    version            UInt64 COMMENT 'sequence of the last applied event',
    updated_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, transaction_id)
COMMENT 'Current state and derived facts of each payment transaction (lifecycle tracker).';

CREATE TABLE IF NOT EXISTS ${database}.pipeline_metrics
(
    time   DateTime64(3, 'UTC'),
    worker LowCardinality(String),
    metric LowCardinality(String),
    value  Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (metric, time)
TTL toDateTime(time) + INTERVAL 30 DAY
COMMENT 'Periodic snapshots of worker counters (events in, duplicates, late, dead letters, lag).';
