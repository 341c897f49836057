-- The service each invoice line bills, so revenue can be recognized over it (dbt fct_revenue_recognized):
-- a usage line its usage month, a fee the part of its billing cycle it pays for (a yearly fee in advance
-- its year). Lines stored before read as null; the marts then take their invoice's period.

ALTER TABLE ${database}.invoice_lines
    ADD COLUMN IF NOT EXISTS service_start Nullable(DateTime64(3, 'UTC')) COMMENT 'start of the service the line bills';

ALTER TABLE ${database}.invoice_lines
    ADD COLUMN IF NOT EXISTS service_end Nullable(DateTime64(3, 'UTC')) COMMENT 'end of the service the line bills (exclusive)';
