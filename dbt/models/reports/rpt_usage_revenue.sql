-- Usage revenue as billed: usage lines of booked invoices per month of the billed period, meter,
-- billed product and charge, in each currency (trailing-month actuals; not part of MRR).
select
    period_month as month_start,
    meter,
    product_id,
    charge_id,
    currency,
    sum(quantity) as quantity,
    sum(amount) as amount,
    sum(amount_usd) as amount_usd,
    uniqExact(customer_id) as customers
from {{ ref('fct_invoice_line') }}
where is_booked and kind = 'usage'
group by month_start, meter, product_id, charge_id, currency
