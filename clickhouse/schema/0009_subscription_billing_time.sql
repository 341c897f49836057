-- Calendar or anniversary billing per subscription: when its fee cycles start. Older events and
-- spans read as `calendar`, the default of the subscription contract.

ALTER TABLE ${database}.subscription_events
    ADD COLUMN IF NOT EXISTS billing_time LowCardinality(String) DEFAULT 'calendar'
    COMMENT 'calendar (months from the 1st, years from 1 January) or anniversary (from start_time)' AFTER billing_interval;

ALTER TABLE ${database}.invoice_spans
    ADD COLUMN IF NOT EXISTS billing_time LowCardinality(String) DEFAULT 'calendar'
    COMMENT 'billing time of the span: anniversary spans bill every fee per cycle, not on the span';
