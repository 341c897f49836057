-- Alert rules of one customer each, created, updated and deleted through the API (`/v1/alert-rules`) and
-- `billing alerts rules create|update|delete`; `billing alerts scan` evaluates them with the rules files.
-- One row per change of a rule, the highest version is its current state (read with FINAL); a delete
-- writes a row with deleted = 1. The rule itself is its JSON document, validated against the one rule
-- model (billing/core/alerts/rules.py) when written and again when read.

CREATE TABLE IF NOT EXISTS ${database}.alert_rules
(
    rule_id     String COMMENT 'unique among the stored rules and the configured rules files',
    customer_id String COMMENT 'the one customer the rule watches; never changes',
    kind        LowCardinality(String) COMMENT 'usage_threshold, usage_anomaly, payment_due, credit_balance or spend_threshold',
    definition  String COMMENT 'the rule''s fields as JSON, without id and customers',
    created_at  DateTime64(6, 'UTC'),
    updated_at  DateTime64(6, 'UTC'),
    updated_by  String COMMENT 'API key id, or cli',
    deleted     UInt8 COMMENT '1: the rule was deleted at updated_at',
    version     UInt64 COMMENT 'microseconds of the change'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY rule_id
COMMENT 'Alert rules per customer, latest version per rule id.';
