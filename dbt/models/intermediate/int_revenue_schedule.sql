-- Revenue recognition schedule: the exact (unrounded) share of each booked invoice line and each credit
-- note line recognized in each month of its service. A line's recognizable amount is its share of its
-- invoice's booked amount (dim_customer_invoices, the one definition: net of coupons and credits,
-- before tax), spread evenly over its service time (service_start to service_end, to the second, so
-- evenly per day over whole days); usage and late-usage correction lines are recognized whole in
-- their usage month. A credit note line takes its amount back over the unused end of the cycle it
-- credits (the last `quantity` share of it). Drafts and void invoices recognize nothing. Rounding is
-- per invoice, in fct_revenue_recognition.
with invoices as (
    select invoice_id, customer_id, currency, subtotal, booked_amount, period_start, period_end
    from {{ ref('dim_customer_invoices') }}
    where is_booked
),
lines as (
    select
        l.invoice_id as invoice_id,
        i.customer_id as customer_id,
        i.currency as currency,
        'invoice' as document,
        l.invoice_id as document_id,
        l.line_no as line_no,
        cast(l.kind as String) as kind,
        l.amount as line_amount,
        multiIf(i.subtotal = i.booked_amount, l.amount, i.subtotal = 0, toDecimal128(0, 9),
                toDecimal128(l.amount * i.booked_amount / i.subtotal, 9)) as amount,
        coalesce(l.service_start, i.period_start) as service_start,
        coalesce(l.service_end, i.period_end) as service_end,
        kind in ('usage', 'correction') as in_usage_month
    from {{ ref('stg_invoice_lines') }} as l
    inner join invoices as i on i.invoice_id = l.invoice_id
    union all
    select
        c.invoice_id as invoice_id,
        i.customer_id as customer_id,
        i.currency as currency,
        'credit_note' as document,
        c.credit_note_id as document_id,
        c.line_no as line_no,
        'credit_note' as kind,
        -c.amount as line_amount,
        toDecimal128(-c.amount, 9) as amount,
        c.service_end - toIntervalSecond(toInt64(round(
            toFloat64(c.quantity) * dateDiff('second', c.service_start, c.service_end)))) as service_start,
        c.service_end as service_end,
        false as in_usage_month
    from {{ ref('stg_credit_note_lines') }} as c
    inner join invoices as i on i.invoice_id = c.invoice_id
),
spans as (
    select
        *,
        if(in_usage_month, 0, greatest(dateDiff('second', service_start, service_end), 0)) as service_seconds,
        toStartOfMonth(service_start) as first_month,
        if(service_seconds = 0, first_month, toStartOfMonth(service_end - toIntervalMillisecond(1))) as last_month
    from lines
)
select
    s.invoice_id as invoice_id,
    s.customer_id as customer_id,
    s.currency as currency,
    s.document as document,
    s.document_id as document_id,
    s.line_no as line_no,
    s.kind as kind,
    s.line_amount as line_amount,
    s.amount as amount,
    s.service_start as service_start,
    s.service_end as service_end,
    s.service_seconds as service_seconds,
    addMonths(s.first_month, toInt32(n)) as month_start,
    if(s.service_seconds = 0, toInt64(0),
       dateDiff('second', greatest(s.service_start, toDateTime64(month_start, 3, 'UTC')),
                least(s.service_end, toDateTime64(addMonths(month_start, 1), 3, 'UTC')))) as seconds_in_month,
    if(s.service_seconds = 0, s.amount,
       toDecimal128(s.amount * toDecimal128(seconds_in_month, 0) / toDecimal128(s.service_seconds, 0), 9)) as exact_amount
from spans as s
array join range(toUInt32(dateDiff('month', s.first_month, s.last_month) + 1)) as n
