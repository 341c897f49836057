-- Payment transactions by the ISO week (Monday) of their first attempt.
select
    toStartOfWeek(initiated_date, 1) as week_start,
    count() as payments,
    countIf(succeeded) as successful,
    countIf(not succeeded) as not_successful,
    sum(attempts) as attempts
from {{ ref('fct_transaction') }}
group by week_start
