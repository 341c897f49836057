-- Per booked invoice and month, the revenue recognized to date plus the deferred (from the booked month
-- on) or minus the unbilled (before it) is the booked amount minus its credit notes; deferred is never
-- negative; and over all months an invoice recognizes exactly its booked amount minus its credit notes.
with invoices as (
    select i.invoice_id as invoice_id, i.booked_amount as booked,
           coalesce(c.credited, toDecimal128(0, 9)) as credited
    from {{ ref('dim_customer_invoices') }} as i
    left join (select invoice_id, sum(amount) as credited from {{ ref('stg_credit_note_lines') }}
               group by invoice_id) as c on c.invoice_id = i.invoice_id
    where i.is_booked
    settings join_use_nulls = 1
),
recognized as (
    select invoice_id, sum(recognized_amount) as recognized, argMax(deferred_amount, month_start) as last_deferred
    from {{ ref('fct_revenue_recognition') }}
    group by invoice_id
)
select r.invoice_id as invoice_id, 'month' as failure, r.month_start as month_start
from {{ ref('fct_revenue_recognition') }} as r
inner join invoices as i on i.invoice_id = r.invoice_id
where r.deferred_amount < 0
   or (r.month_start >= r.booked_month and r.recognized_to_date + r.deferred_amount != i.booked - i.credited)
   or (r.month_start < r.booked_month and (r.unbilled_amount != r.recognized_to_date or r.deferred_amount != 0))
union all
select i.invoice_id, 'total', null
from invoices as i
left join recognized as t on t.invoice_id = i.invoice_id
where coalesce(t.recognized, toDecimal128(0, 9)) != i.booked - i.credited or coalesce(t.last_deferred, toDecimal128(0, 9)) != 0
settings join_use_nulls = 1
