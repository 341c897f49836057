-- One row per payment transaction, folded from its state changes in sequence order.
select
    transaction_id,
    any(invoice_id) as invoice_id,
    any(customer_id) as customer_id,
    any(method) as method,
    any(amount) as amount,
    any(currency) as currency,
    argMax(status, sequence) as final_status,
    countIf(status = 'succeeded') > 0 as succeeded,
    max(attempt) as attempts,
    toUInt16(countIf(status = 'failed')) as failures,
    argMaxIf(failure_reason, sequence, status = 'failed') as last_failure_reason,
    min(initiated_at) as first_initiated_at,
    minIf(completed_at, status = 'succeeded') as succeeded_at,
    if(succeeded, dateDiff('second', argMaxIf(initiated_at, sequence, status = 'succeeded'), succeeded_at), null)
        as processing_seconds,
    if(succeeded, dateDiff('second', first_initiated_at, succeeded_at), null) as seconds_to_success,
    sumIf(coalesce(refunded_amount, toDecimal128(0, 9)), status = 'refunded') as refunded_amount,
    countIf(status = 'disputed') > 0 as disputed,
    arrayStringConcat(arrayMap(x -> x.2, arraySort(groupArray((sequence, toString(status))))), '>') as status_path,
    max(event_time) as last_event_at,
    count() as events
from {{ ref('stg_payment_events') }}
group by transaction_id
