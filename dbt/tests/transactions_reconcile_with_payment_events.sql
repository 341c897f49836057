-- Every transaction of the raw payment events is in the transaction fact exactly once, with
-- the same amount, and collected money only comes from transactions with a succeeded event.
with raw as (
    select transaction_id, any(amount) as amount, countIf(status = 'succeeded') > 0 as succeeded
    from {{ source('raw', 'payment_events') }} final
    group by transaction_id
)
select raw.transaction_id as raw_id, f.transaction_id as mart_id
from raw
full outer join {{ ref('fct_transaction') }} as f on f.transaction_id = raw.transaction_id
where raw_id is null or mart_id is null or raw.amount != f.amount or raw.succeeded != f.succeeded
   or f.collected_amount != if(raw.succeeded, raw.amount, toDecimal128(0, 9))
settings join_use_nulls = 1
