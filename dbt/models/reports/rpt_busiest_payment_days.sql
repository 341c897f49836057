-- Payment attempts per weekday (UTC).
select
    initiated_weekday as day_of_week,
    dateName('weekday', any(initiated_at)) as weekday_name,
    count() as attempts,
    countIf(outcome = 'succeeded') as succeeded
from {{ ref('dim_payment_details') }}
group by day_of_week
