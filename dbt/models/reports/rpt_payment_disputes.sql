-- Per customer with any trouble: disputes, refunds, late payments and failed attempts.
select
    customer_id,
    countIf(disputed) as disputes,
    countIf(refunded_amount > 0) as refunds,
    sum(refunded_amount) as refunded_total,
    any(currency) as currency,
    countIf(paid_late) as late_payments,
    sum(failures) as failed_attempts
from {{ ref('fct_transaction') }}
group by customer_id
having disputes + refunds + late_payments > 0
