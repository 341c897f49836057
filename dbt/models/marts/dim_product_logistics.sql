{{ config(engine='MergeTree()', order_by='(customer_id, invoice_id)') }}
-- Shipments of physical add-ons and how long delivery took.
select
    s.invoice_id as invoice_id,
    s.customer_id as customer_id,
    s.recipient as recipient,
    s.address_line as address_line,
    s.city as city,
    s.postal_code as postal_code,
    s.country as country,
    s.carrier as carrier,
    s.tracking_number as tracking_number,
    s.currency as currency,
    s.cost as cost,
    s.shipped_at as shipped_at,
    s.delivered_at as delivered_at,
    if(s.delivered_at is null or s.shipped_at is null, null,
       dateDiff('hour', s.shipped_at, s.delivered_at)) as delivery_hours,
    s.delivered_at is not null as delivered
from {{ ref('stg_invoice_shipping') }} as s
