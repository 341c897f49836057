-- The per-meter hourly mart adds up to the per-customer one: per meter and hour, value and events.
with detail as (
    select meter, window_start, sum(value) as value, sum(event_count) as events, uniqExact(customer_id) as customers
    from {{ ref('fct_usage_hourly') }}
    group by meter, window_start
)
select detail.meter, detail.window_start, detail.value, m.value
from detail
full outer join {{ ref('fct_usage_meter_hourly') }} as m
    on m.meter = detail.meter and m.window_start = detail.window_start
where detail.value != m.value or detail.events != m.event_count or detail.customers != m.customers
settings join_use_nulls = 1
