{{ config(engine='MergeTree()', order_by='date_day') }}
-- One row per UTC day from the first customer signup to the latest fact (plus one day).
with bounds as (
    select
        least(
            (select min(toDate(signup_time)) from {{ ref('stg_customers') }}),
            (select min(toDate(period_start)) from {{ ref('stg_invoices') }}),
            (select min(toDate(window_start)) from {{ ref('stg_usage_rollups') }})
        ) as first_day,
        greatest(
            (select max(toDate(event_time)) from {{ ref('stg_payment_events') }}),
            (select max(toDate(period_end)) from {{ ref('stg_invoices') }}),
            (select max(toDate(window_start)) from {{ ref('stg_usage_rollups') }}),
            today()
        ) + 1 as last_day
)
select
    toDate(assumeNotNull(first_day) + number) as date_day,
    toStartOfWeek(date_day, 1) as week_start,
    toStartOfMonth(date_day) as month_start,
    toStartOfQuarter(date_day) as quarter_start,
    toYear(date_day) as year,
    toQuarter(date_day) as quarter,
    toMonth(date_day) as month,
    dateName('month', date_day) as month_name,
    toDayOfMonth(date_day) as day_of_month,
    toDayOfWeek(date_day) as day_of_week,
    dateName('weekday', date_day) as weekday_name,
    toDayOfWeek(date_day) >= 6 as is_weekend,
    toISOWeek(date_day) as iso_week
from bounds
array join range(toUInt32(assumeNotNull(dateDiff('day', first_day, last_day)) + 1)) as number
