-- Shipping of physical add-ons, latest version per invoice.
select
    invoice_id,
    customer_id,
    recipient,
    address_line,
    city,
    postal_code,
    country,
    carrier,
    tracking_number,
    cost,
    currency,
    shipped_at,
    delivered_at
from {{ source('raw', 'invoice_shipping') }} final
