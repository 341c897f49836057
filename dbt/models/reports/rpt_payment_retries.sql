-- Transactions by number of retries, and how many of them succeeded in the end.
select
    retries,
    count() as transactions,
    countIf(succeeded) as successful,
    countIf(not succeeded) as not_successful
from {{ ref('fct_transaction') }}
group by retries
