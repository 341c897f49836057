{{ config(materialized='table', engine='MergeTree()', order_by='(month_start, meter, customer_id)') }}
-- Usage per customer, meter and calendar month in the meter's own aggregation, as the invoicing
-- engine bills it (billing/core/invoicing/usage.py): SUM and COUNT add the hours, MAX and
-- UNIQUE_COUNT take the peak hour, LATEST the last hour. Group keys of an hour are added first.
-- A table (not a view): dashboards read it directly and it folds millions of hourly rows.
with hours as (
    select customer_id, meter, window_start, any(aggregation) as aggregation, sum(value) as value,
           sum(event_count) as events
    from {{ ref('fct_usage_hourly') }}
    group by customer_id, meter, window_start
)
select
    toStartOfMonth(window_start) as month_start,
    customer_id,
    meter,
    any(aggregation) as aggregation,
    multiIf(aggregation in ('MAX', 'UNIQUE_COUNT'), max(value), aggregation = 'LATEST', argMax(value, window_start),
            sum(value)) as quantity,
    sum(events) as events
from hours
group by month_start, customer_id, meter
