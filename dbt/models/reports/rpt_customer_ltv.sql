-- Lifetime value: everything a customer paid, minus refunds.
select
    c.customer_id as customer_id,
    c.company_name as company_name,
    c.region as region,
    c.currency as currency,
    countIf(t.succeeded) as payments,
    sum(t.net_amount) as ltv,
    sum(t.net_amount_usd) as ltv_usd,
    minIf(t.succeeded_at, t.succeeded) as first_payment_at,
    maxIf(t.succeeded_at, t.succeeded) as last_payment_at
from {{ ref('fct_transaction') }} as t
inner join {{ ref('dim_customer') }} as c on c.customer_id = t.customer_id
group by c.customer_id, c.company_name, c.region, c.currency
having payments > 0
