-- The webhook delivery log, written by `billing webhooks deliver` and `billing webhooks replay`: one row per
-- attempt to POST one event to one endpoint. A delivery (id derived from the event and the endpoint) is
-- delivered (2xx), retrying, or dead after the configured failed attempts; a replay adds attempts.

CREATE TABLE IF NOT EXISTS ${database}.webhook_deliveries
(
    delivery_id  String COMMENT 'deterministic: one per event and endpoint',
    attempt      UInt32 COMMENT '1, 2, ... over automatic retries and replays',
    event_id     String COMMENT 'the webhook-id header: the alert id, payment event id or invoice event digest',
    event_type   LowCardinality(String),
    customer_id  String,
    endpoint_id  String,
    url          String,
    state        LowCardinality(String) COMMENT 'delivered, retrying or dead (after the last failed attempt)',
    status_code  Nullable(UInt16) COMMENT 'HTTP status answered; null when none (refused, timeout)',
    error        Nullable(String) COMMENT 'why the attempt failed',
    latency_ms   Float64 COMMENT 'from sending the request to the end of the answer (or the failure)',
    attempted_at DateTime64(3, 'UTC'),
    body         String CODEC(ZSTD(3)) COMMENT 'the exact bytes POSTed (signed), kept for replays'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (delivery_id, attempt)
COMMENT 'Webhook delivery attempts, one row per attempt.';
