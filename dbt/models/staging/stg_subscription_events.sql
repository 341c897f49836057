-- Every subscription change, deduplicated.
select
    event_id,
    subscription_id,
    customer_id,
    type as event_type,
    sequence,
    plan_id,
    previous_plan_id,
    billing_interval,
    billing_time,
    status,
    start_time,
    end_time,
    effective_time,
    event_time
from {{ source('raw', 'subscription_events') }} final
