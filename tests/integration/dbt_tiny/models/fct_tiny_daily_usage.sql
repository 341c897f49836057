select
    customer_id,
    meter,
    toDate(event_time) as usage_date,
    sum(quantity) as quantity,
    count() as events
from {{ ref('stg_tiny_usage') }}
group by customer_id, meter, usage_date
