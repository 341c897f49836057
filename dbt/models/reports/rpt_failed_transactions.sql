-- Per method: transactions that had a failed attempt, and those that never succeeded.
select
    method,
    count() as transactions,
    countIf(failures > 0) as with_failed_attempts,
    countIf(not succeeded and status = 'failed') as failed_for_good,
    sum(failures) as failed_attempts
from {{ ref('fct_transaction') }}
group by method
