-- Additive meters: the daily usage mart sums to the hourly one per customer, meter and day.
with hourly as (
    select customer_id, meter, usage_date, sum(value) as value, sum(event_count) as events
    from {{ ref('fct_usage_hourly') }}
    where aggregation in ('SUM', 'COUNT')
    group by customer_id, meter, usage_date
),
daily as (
    select customer_id, meter, usage_date, sum(value) as value, sum(event_count) as events
    from {{ ref('fct_usage_daily') }}
    where aggregation in ('SUM', 'COUNT')
    group by customer_id, meter, usage_date
)
select hourly.customer_id, hourly.meter, hourly.usage_date, hourly.value as hourly_value, daily.value as daily_value
from hourly
full outer join daily
    on hourly.customer_id = daily.customer_id and hourly.meter = daily.meter and hourly.usage_date = daily.usage_date
where hourly_value != daily_value or hourly.events != daily.events
settings join_use_nulls = 1
