-- Each subscription's state at the end of every month (its last second, or the as-of time for the
-- month not over yet), by the invoicing engine's rules (billing/core/invoicing/timeline.py): the
-- last change by effective time, then sequence, effective by then; active and past_due are
-- billable, trialing is not, a cancellation keeps the billability it had until its end_time.
with bounds as (
    select
        toStartOfMonth(min(start_time)) as first_month,
        toStartOfMonth((select as_of from {{ ref('int_as_of') }})) as last_month,
        (select as_of from {{ ref('int_as_of') }}) as as_of
    from {{ ref('stg_subscription_events') }}
),
months as (
    select
        addMonths(first_month, toInt32(number)) as month_start,
        least(toDateTime(addMonths(month_start, 1), 'UTC') - 1, as_of) as measured_at
    from bounds
    array join range(toUInt32(dateDiff('month', first_month, last_month) + 1)) as number
),
states as (
    select
        m.month_start as month_start,
        any(m.measured_at) as measured_at,
        e.subscription_id as subscription_id,
        argMax(e.customer_id, (e.effective_time, e.sequence)) as customer_id,
        argMax(e.plan_id, (e.effective_time, e.sequence)) as plan_id,
        argMax(e.billing_interval, (e.effective_time, e.sequence)) as billing_interval,
        argMax(e.status, (e.effective_time, e.sequence)) as status,
        argMax(e.end_time, (e.effective_time, e.sequence)) as end_time,
        argMaxIf(e.status, (e.effective_time, e.sequence), e.status != 'canceled') as status_before_cancel,
        min(e.start_time) as start_time
    from months as m
    cross join {{ ref('stg_subscription_events') }} as e
    where e.effective_time <= m.measured_at
    group by m.month_start, e.subscription_id
)
select
    month_start,
    measured_at,
    subscription_id,
    customer_id,
    plan_id,
    billing_interval,
    status,
    start_time <= measured_at and (
        status in ('active', 'past_due')
        or (status = 'canceled' and end_time > measured_at and status_before_cancel in ('active', 'past_due'))
    ) as is_billable
from states
