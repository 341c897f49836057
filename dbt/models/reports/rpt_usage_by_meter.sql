-- Usage per month and meter in the meter's own aggregation (int_usage_monthly), added over customers.
select
    month_start,
    meter,
    any(aggregation) as aggregation,
    sum(quantity) as quantity,
    uniqExact(customer_id) as customers,
    sum(events) as events
from {{ ref('int_usage_monthly') }}
group by month_start, meter
