-- Credit note lines with their credit note's credited invoice and issue time (FINAL: one copy each).
select
    l.credit_note_id as credit_note_id,
    l.line_no as line_no,
    n.invoice_id as invoice_id,
    l.customer_id as customer_id,
    l.currency as currency,
    l.charge as charge,
    l.description as description,
    l.quantity as quantity,
    l.amount as amount,
    l.service_start as service_start,
    l.service_end as service_end,
    n.issued_at as issued_at
from {{ source('raw', 'credit_note_lines') }} as l final
inner join {{ source('raw', 'credit_notes') }} as n final on n.credit_note_id = l.credit_note_id
