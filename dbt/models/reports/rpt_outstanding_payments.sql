-- Outstanding invoices (finalized, not paid) and whether they are overdue at the metrics' as-of time
-- (the one dim_customer_invoices was built with, so days overdue and the overdue flag always agree).
select
    i.invoice_id as invoice_id,
    i.customer_id as customer_id,
    i.company_name as company_name,
    i.currency as currency,
    i.outstanding_amount as total,
    round(i.outstanding_amount / c.units_per_usd, 2) as total_usd,
    i.due_at as due_at,
    i.as_of as as_of,
    i.is_overdue as overdue,
    if(overdue, dateDiff('day', i.due_at, as_of), 0) as days_overdue
from {{ ref('dim_customer_invoices') }} as i
inner join {{ ref('dim_customer') }} as c on c.customer_id = i.customer_id
where i.is_outstanding
