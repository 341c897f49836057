-- Collected money computed two ways agrees: per invoice, the succeeded payments of the transaction
-- fact equal the total of every paid invoice, and no money is collected for an invoice not paid;
-- so collected revenue (net of refunds) is the paid invoices' totals minus refunds.
with payments as (
    select invoice_id, sum(collected_amount) as collected
    from {{ ref('fct_transaction') }}
    group by invoice_id
)
select i.invoice_id, i.status, i.total, coalesce(p.collected, toDecimal128(0, 9)) as collected
from {{ ref('dim_customer_invoices') }} as i
left join payments as p on p.invoice_id = i.invoice_id
where if(i.status = 'paid', collected != i.total, collected != 0)
settings join_use_nulls = 1
