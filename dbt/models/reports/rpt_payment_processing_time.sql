-- Settled attempts per method: seconds from initiation to settlement.
select
    method,
    count() as settled_attempts,
    round(avg(processing_seconds), 1) as avg_seconds,
    min(processing_seconds) as min_seconds,
    max(processing_seconds) as max_seconds
from {{ ref('dim_payment_details') }}
where outcome != 'pending'
group by method
