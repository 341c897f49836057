-- Current state of each subscription: its change with the highest sequence.
select
    subscription_id,
    argMax(customer_id, sequence) as customer_id,
    argMax(plan_id, sequence) as plan_id,
    argMax(billing_interval, sequence) as billing_interval,
    argMax(status, sequence) as status,
    min(start_time) as started_at,
    argMax(end_time, sequence) as ended_at,
    toUInt32(countIf(event_type = 'plan_changed')) as plan_changes,
    max(event_time) as updated_at
from {{ ref('stg_subscription_events') }}
group by subscription_id
