-- Total usage per meter for additive meters, with active customers and events.
select
    meter,
    any(aggregation) as aggregation,
    sum(value) as total_value,
    uniqExact(customer_id) as customers,
    sum(event_count) as events
from {{ ref('fct_usage_hourly') }}
group by meter
