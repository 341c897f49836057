"""ClickHouse adapter: the one client factory (:mod:`client`), schema migrations
(:mod:`migrations`), each table's columns and contract -> row mapping (:mod:`facts`),
reconciliation of rollups against raw facts (:mod:`reconcile`) and SQL statement splitting
(:mod:`sql`). Works against any ClickHouse server; the local one is :mod:`billing.chdb_server`."""
