{{ config(engine='MergeTree()', order_by='(meter, window_start)') }}
-- Usage of all customers per meter and hour: the small table behind usage-over-time, busiest
-- hours and weekday seasonality charts (thousands of rows instead of millions).
select
    meter,
    window_start,
    toDate(window_start) as usage_date,
    toHour(window_start) as hour_of_day,
    toDayOfWeek(window_start) as day_of_week,
    any(aggregation) as aggregation,
    sum(value) as value,
    sum(event_count) as event_count,
    uniqExact(customer_id) as customers
from {{ ref('fct_usage_hourly') }}
group by meter, window_start
