-- Payment transactions by the day of their first attempt.
select
    initiated_date as day,
    count() as payments,
    countIf(succeeded) as successful,
    countIf(not succeeded) as not_successful,
    sum(attempts) as attempts
from {{ ref('fct_transaction') }}
group by day
