-- Calendar or anniversary billing per subscription: when its fee cycles start. The subscription
-- contract's default is `calendar`. Events recorded before this migration read as the engine billed them:
-- yearly subscriptions on their anniversary, monthly ones by the calendar. Spans recorded before read as
-- `calendar`.

ALTER TABLE ${database}.subscription_events
    ADD COLUMN IF NOT EXISTS billing_time LowCardinality(String)
        DEFAULT if(billing_interval = 'year', 'anniversary', 'calendar')
    COMMENT 'calendar (months from the 1st, years from 1 January) or anniversary (from start_time)' AFTER billing_interval;

ALTER TABLE ${database}.invoice_spans
    ADD COLUMN IF NOT EXISTS billing_time LowCardinality(String) DEFAULT 'calendar'
    COMMENT 'billing time of the span: anniversary spans bill every fee per cycle, not on the span';
