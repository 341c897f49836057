-- Invoice line items; every invoice version re-sends its lines, FINAL keeps one copy.
select
    invoice_id,
    line_no,
    customer_id,
    period_start,
    currency,
    kind,
    charge,
    meter,
    description,
    quantity,
    unit_price,
    amount,
    service_start,
    service_end
from {{ source('raw', 'invoice_lines') }} final
