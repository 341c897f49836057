-- Recognized revenue recomputed a second way, day by day from the invoice and credit note lines (not
-- from int_revenue_schedule): every booked line's share of its invoice's booked amount spread over
-- the days of its service, each day taking its seconds of service (usage lines on their usage month's
-- first day); per invoice and month, fct_revenue_recognition may differ from it by less than one minor
-- unit (its per-invoice rounding) or, at the rare double half, exactly one; never more. Fails when revenue follows months instead of days, or
-- misses a line or a credit note.
with invoices as (
    select i.invoice_id as invoice_id, i.subtotal as subtotal, i.booked_amount as booked,
           i.period_start as period_start, i.period_end as period_end, r.minor_units as minor_units
    from {{ ref('dim_customer_invoices') }} as i
    inner join {{ ref('currency_rates') }} as r on r.currency = i.currency
    where i.is_booked
),
services as (
    select l.invoice_id as invoice_id,
           toFloat64(l.amount) * if(i.subtotal = 0, 0, toFloat64(i.booked) / toFloat64(i.subtotal)) as amount,
           coalesce(l.service_start, i.period_start) as starts,
           if(l.kind in ('usage', 'correction'), starts, coalesce(l.service_end, i.period_end)) as ends
    from {{ ref('stg_invoice_lines') }} as l
    inner join invoices as i on i.invoice_id = l.invoice_id
    union all
    select c.invoice_id, -toFloat64(c.amount),
           c.service_end - toIntervalSecond(toInt64(round(toFloat64(c.quantity) * dateDiff('second', c.service_start, c.service_end)))),
           c.service_end
    from {{ ref('stg_credit_note_lines') }} as c
    inner join invoices as i on i.invoice_id = c.invoice_id
),
days as (
    select invoice_id, toStartOfMonth(day) as month_start,
           if(ends <= starts, amount,
              amount * dateDiff('second', greatest(starts, toDateTime64(day, 3, 'UTC')),
                                least(ends, toDateTime64(day + 1, 3, 'UTC'))) / dateDiff('second', starts, ends)) as share
    from services
    array join arrayMap(d -> toDate(starts) + d,
                        range(toUInt32(if(ends <= starts, 0, dateDiff('day', toDate(starts), toDate(ends - toIntervalMillisecond(1))))) + 1)) as day
),
expected as (
    select invoice_id, month_start, sum(share) as expected
    from days
    group by invoice_id, month_start
)
select e.invoice_id as invoice_id, e.month_start as month_start, e.expected as expected,
       coalesce(r.recognized_amount, toDecimal128(0, 9)) as recognized
from expected as e
inner join invoices as i on i.invoice_id = e.invoice_id
left join {{ ref('fct_revenue_recognition') }} as r on r.invoice_id = e.invoice_id and r.month_start = e.month_start
where abs(toFloat64(recognized) - e.expected) > pow(10, -i.minor_units) + 1e-6
settings join_use_nulls = 1
