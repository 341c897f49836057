-- Invoices paid after their due date.
select
    invoice_id,
    customer_id,
    currency,
    total,
    due_at,
    paid_at,
    days_late
from {{ ref('dim_customer_invoices') }}
where paid_late
