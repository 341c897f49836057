-- Per method and overall ('all', the rollup row): share of settled transactions that succeeded, and
-- of settled attempts; in-flight transactions (latest state `initiated`) and their pending attempt
-- are left out of both.
with rates as (
    select
        method as payment_method,
        count() as transactions,
        countIf(not is_settled) as in_flight,
        countIf(succeeded) as succeeded,
        if(transactions = in_flight, null, round(succeeded / (transactions - in_flight), 4)) as success_rate,
        sum(attempts) - in_flight as settled_attempts,
        if(settled_attempts = 0, null, round(succeeded / settled_attempts, 4)) as attempt_success_rate
    from {{ ref('fct_transaction') }}
    group by payment_method with rollup
)
select
    if(payment_method = '', 'all', payment_method) as method,
    transactions, in_flight, succeeded, success_rate, settled_attempts, attempt_success_rate
from rates
