-- Payment transactions by the month of their first attempt.
select
    toStartOfMonth(initiated_date) as month_start,
    count() as payments,
    countIf(succeeded) as successful,
    countIf(not succeeded) as not_successful,
    sum(attempts) as attempts
from {{ ref('fct_transaction') }}
group by month_start
