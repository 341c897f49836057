"""The domain core: event contracts, meters, pricing and the pure rules of invoicing.

Owns: what a usage event, customer, subscription, invoice and payment are (:mod:`contracts`),
how each meter aggregates (:mod:`meters`), money and prices (:mod:`pricing`), and how a period's
plans, usage and grants become an invoice (:mod:`invoicing`), and when alert rules fire (:mod:`alerts`).
Does not own: reading settings, files other than its own plan and alert rule examples, Kafka or ClickHouse. It
imports nothing else of the project (checked by ``tests/unit/test_architecture.py``); the layers
around it pass in what it needs.
"""
