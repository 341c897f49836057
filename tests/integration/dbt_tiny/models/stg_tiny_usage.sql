select
    event_id,
    customer_id,
    meter,
    quantity,
    event_time
from {{ ref('tiny_usage') }}
