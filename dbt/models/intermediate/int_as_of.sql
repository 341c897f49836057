-- The one "as of" time of the metrics: the latest business event the warehouse holds (a payment
-- state change, an invoice version or a subscription change). Overdue invoices and the MRR of a
-- month that is not over are measured at this time, never at the wall clock.
select greatest(
    (select max(event_time) from {{ ref('stg_payment_events') }}),
    (select max(event_time) from {{ ref('stg_invoices') }}),
    (select max(event_time) from {{ ref('stg_subscription_events') }})
) as as_of
