-- Recurring (subscription and proration) invoice amounts spread evenly over the months each
-- invoice covers (a yearly invoice adds 1/12 to each of its months); void invoices excluded.
select
    addMonths(period_month, month_index) as month_start,
    currency,
    sum(recurring_amount / period_months) as mrr,
    uniqExact(customer_id) as customers
from {{ ref('dim_customer_invoices') }}
array join range(toUInt32(period_months)) as month_index
where status != 'void'
group by month_start, currency
