-- Payment attempts per hour of the day (UTC).
select
    initiated_hour as hour,
    count() as attempts,
    countIf(outcome = 'succeeded') as succeeded
from {{ ref('dim_payment_details') }}
group by hour
