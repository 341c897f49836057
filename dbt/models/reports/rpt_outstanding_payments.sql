-- Finalized invoices not paid yet, and how overdue they are at the latest event in the data.
with (select max(last_event_at) from {{ ref('fct_transaction') }}) as as_of
select
    i.invoice_id as invoice_id,
    i.customer_id as customer_id,
    i.company_name as company_name,
    i.currency as currency,
    i.total as total,
    i.due_at as due_at,
    as_of,
    i.due_at < as_of as overdue,
    if(overdue, dateDiff('day', i.due_at, as_of), 0) as days_overdue
from {{ ref('dim_customer_invoices') }} as i
where i.is_outstanding
