-- Fired alerts (usage thresholds, usage anomalies), one row per alert id, written by `billing alerts scan`
-- (and published on the alerts topic). The id is derived from the rule, customer, period and threshold,
-- so re-evaluating the same usage replaces a row instead of adding one.

CREATE TABLE IF NOT EXISTS ${database}.alerts
(
    alert_id     String COMMENT 'deterministic: the same alert always has the same id',
    customer_id  String,
    type         LowCardinality(String) COMMENT 'usage.threshold.exceeded or usage.anomaly.detected',
    rule         String COMMENT 'id of the alert rule that fired',
    meter        LowCardinality(String),
    period_start DateTime64(3, 'UTC') COMMENT 'billing period of a threshold, the hour of an anomaly',
    period_end   DateTime64(3, 'UTC'),
    value        Decimal(38, 9) COMMENT 'usage of the period so far (threshold) or of the hour (anomaly)',
    threshold    Nullable(Decimal(38, 9)) COMMENT 'as written in the rule',
    unit         LowCardinality(Nullable(String)) COMMENT 'units or percent (of the plan''s included units)',
    limit_units  Nullable(Decimal(38, 9)) COMMENT 'the threshold in units of the meter',
    baseline     Nullable(Decimal(38, 9)) COMMENT 'median of the same hour of the past weeks',
    mad          Nullable(Decimal(38, 9)) COMMENT 'median absolute deviation of those hours',
    score        Nullable(Decimal(38, 9)) COMMENT 'robust z-score; null when the baseline never varied',
    direction    LowCardinality(Nullable(String)) COMMENT 'spike or drop',
    detected_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, alert_id)
COMMENT 'Fired alerts, once per deterministic alert id.';
