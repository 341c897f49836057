-- MRR computed two ways agrees: for every customer and month whose subscriptions did not change
-- during the month (no event effective in it, monthly plans, the same MRR at both month ends), the
-- run-rate from subscription events (fct_mrr) equals the subscription fee lines of the booked
-- invoice of that month (fct_invoice_line). On the anniversary, the cycle a month bills in arrears
-- began in the month before, so a change then (a start, a trial's end, a new plan) is left out too.
with customer_months as (
    select month_start, customer_id, sum(mrr) as mrr, countIf(billing_interval != 'month') as yearly
    from {{ ref('fct_mrr') }}
    where not is_partial_month
    group by month_start, customer_id
),
stable as (
    select cur.month_start as month_start, cur.customer_id as customer_id, cur.mrr as mrr
    from customer_months as cur
    inner join customer_months as prev
        on prev.customer_id = cur.customer_id and prev.month_start = addMonths(cur.month_start, -1)
    where cur.mrr = prev.mrr and cur.yearly = 0 and prev.yearly = 0
      and (cur.customer_id, cur.month_start) not in (
          select customer_id, toStartOfMonth(effective_time) from {{ ref('stg_subscription_events') }}
          union all
          select customer_id, addMonths(toStartOfMonth(effective_time), 1) from {{ ref('stg_subscription_events') }}
          where billing_time = 'anniversary')
),
fees as (
    select customer_id, period_month as month_start, sum(amount) as fees
    from {{ ref('fct_invoice_line') }}
    where is_booked and kind = 'subscription'
    group by customer_id, month_start
)
select s.month_start, s.customer_id, s.mrr, f.fees
from stable as s
inner join fees as f on f.customer_id = s.customer_id and f.month_start = s.month_start
where s.mrr != f.fees
