-- Raw, id-keyed facts written by the stream worker (one table per topic).
-- ReplacingMergeTree keyed by the message identity: a replay after a crash rewrites the same
-- rows, which merge away, so raw facts never double count (query with FINAL or argMax).
-- ${database} is replaced by BILLING_CLICKHOUSE_DATABASE.

CREATE DATABASE IF NOT EXISTS ${database};

CREATE TABLE IF NOT EXISTS ${database}.usage_events
(
    event_id        String,
    customer_id     String,
    meter           LowCardinality(String),
    event_time      DateTime64(3, 'UTC'),
    quantity        Decimal(38, 9),
    value           String COMMENT 'the aggregated field when it is not quantity (e.g. user_id)',
    dimensions      Map(LowCardinality(String), String),
    group_key       String COMMENT 'canonical text of the meter group_by dimensions',
    source          LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, meter, toStartOfHour(event_time), event_id)
TTL toDateTime(event_time) + INTERVAL 400 DAY
COMMENT 'Validated, deduplicated usage events (audit and reconciliation source).';

CREATE TABLE IF NOT EXISTS ${database}.customers
(
    customer_id  String,
    company_name String,
    email        String,
    country      LowCardinality(String),
    region       LowCardinality(String),
    currency     LowCardinality(String),
    segment      LowCardinality(String),
    signup_time  DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY customer_id
COMMENT 'Latest state of each customer (tenant).';

CREATE TABLE IF NOT EXISTS ${database}.subscription_events
(
    event_id         String,
    subscription_id  String,
    customer_id      String,
    type             LowCardinality(String),
    sequence         UInt32,
    plan_id          LowCardinality(String),
    previous_plan_id Nullable(String),
    billing_interval LowCardinality(String),
    status           LowCardinality(String),
    start_time       DateTime64(3, 'UTC'),
    end_time         Nullable(DateTime64(3, 'UTC')),
    effective_time   DateTime64(3, 'UTC'),
    event_time       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, subscription_id, sequence)
COMMENT 'Every subscription change; the highest sequence per subscription is its current state.';

CREATE TABLE IF NOT EXISTS ${database}.invoices
(
    invoice_id      String,
    customer_id     String,
    subscription_id Nullable(String),
    period_start    DateTime64(3, 'UTC'),
    period_end      DateTime64(3, 'UTC'),
    currency        LowCardinality(String),
    subtotal        Decimal(38, 9),
    discount_total  Decimal(38, 9),
    tax_rate        Decimal(9, 6),
    tax             Decimal(38, 9),
    total           Decimal(38, 9),
    status          LowCardinality(String),
    issued_at       Nullable(DateTime64(3, 'UTC')),
    due_at          Nullable(DateTime64(3, 'UTC')),
    paid_at         Nullable(DateTime64(3, 'UTC')),
    voided_at       Nullable(DateTime64(3, 'UTC')),
    event_time      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(event_time)
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, invoice_id)
COMMENT 'Invoices; each status change is a newer version of the same invoice_id.';

CREATE TABLE IF NOT EXISTS ${database}.invoice_lines
(
    invoice_id   String,
    line_no      UInt16,
    customer_id  String,
    period_start DateTime64(3, 'UTC'),
    currency     LowCardinality(String),
    kind         LowCardinality(String),
    charge       String,
    meter        Nullable(String),
    description  String,
    quantity     Decimal(38, 9),
    unit_price   Decimal(38, 9),
    amount       Decimal(38, 9),
    breakdown    String COMMENT 'JSON list of computation steps (tiers)'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, invoice_id, line_no)
COMMENT 'Line items of invoices (immutable once the invoice is finalized).';

CREATE TABLE IF NOT EXISTS ${database}.invoice_adjustments
(
    invoice_id    String,
    adjustment_id String,
    customer_id   String,
    period_start  DateTime64(3, 'UTC'),
    currency      LowCardinality(String),
    kind          LowCardinality(String),
    code          Nullable(String),
    description   String,
    percent_off   Nullable(Decimal(9, 4)),
    amount        Decimal(38, 9)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(period_start)
ORDER BY (customer_id, invoice_id, adjustment_id)
COMMENT 'Coupons, discounts and credits applied to invoices (revenue adjustments).';

CREATE TABLE IF NOT EXISTS ${database}.invoice_shipping
(
    invoice_id      String,
    customer_id     String,
    recipient       String,
    address_line    String,
    city            String,
    postal_code     String,
    country         LowCardinality(String),
    carrier         LowCardinality(String),
    tracking_number Nullable(String),
    cost            Decimal(38, 9),
    currency        LowCardinality(String),
    shipped_at      Nullable(DateTime64(3, 'UTC')),
    delivered_at    Nullable(DateTime64(3, 'UTC')),
    event_time      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(event_time)
ORDER BY (customer_id, invoice_id)
COMMENT 'Shipping of physical add-ons billed on invoices (product logistics).';

CREATE TABLE IF NOT EXISTS ${database}.payment_events
(
    event_id        String,
    transaction_id  String,
    invoice_id      String,
    customer_id     String,
    method          LowCardinality(String),
    amount          Decimal(38, 9),
    currency        LowCardinality(String),
    status          LowCardinality(String),
    failure_reason  LowCardinality(Nullable(String)),
    attempt         UInt16,
    sequence        UInt32,
    initiated_at    DateTime64(3, 'UTC'),
    completed_at    Nullable(DateTime64(3, 'UTC')),
    refunded_amount Nullable(Decimal(38, 9)),
    event_time      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, transaction_id, sequence)
COMMENT 'Every state change of every payment transaction.';

CREATE TABLE IF NOT EXISTS ${database}.dead_letters
(
    time         DateTime64(3, 'UTC'),
    source_topic LowCardinality(String),
    partition    Nullable(UInt16),
    offset       Nullable(UInt64),
    reason       String,
    payload      String,
    key          Nullable(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (source_topic, time, cityHash64(payload))
TTL toDateTime(time) + INTERVAL 90 DAY
COMMENT 'Messages that failed validation, with the original bytes and the reason.';
