"""The local ClickHouse endpoint: the chdb engine served over the ClickHouse HTTP interface.

Run it with ``python -m billing.chdb_server.server``; ``billing up`` does that for you. Clients
(clickhouse-connect, dbt-clickhouse, Superset, curl) talk to it exactly as to a ClickHouse server.
"""
