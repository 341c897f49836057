-- Per method and overall ('all'): share of transactions that succeeded and of attempts that did.
select
    method,
    count() as transactions,
    countIf(succeeded) as succeeded,
    round(succeeded / transactions, 4) as success_rate,
    sum(attempts) as attempts,
    round(succeeded / attempts, 4) as attempt_success_rate
from {{ ref('fct_transaction') }}
group by method
union all
select
    'all' as method,
    count() as transactions,
    countIf(succeeded) as succeeded,
    round(succeeded / transactions, 4) as success_rate,
    sum(attempts) as attempts,
    round(succeeded / attempts, 4) as attempt_success_rate
from {{ ref('fct_transaction') }}
