"""Rendering the migrations for a ClickHouse cluster (the parser check runs in tests/integration)."""

from __future__ import annotations

import re

import pytest

from billing.core.errors import ConfigError
from billing.settings import Settings
from billing.warehouse.cluster import on_cluster
from billing.warehouse.migrations import discover, ledger_statements

CLUSTER = Settings(clickhouse_cluster="billing_cluster", clickhouse_database="db")
CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS db\.(\w+)\b")


def _all(settings: Settings) -> list[str]:
    return ledger_statements(settings) + [s for migration in discover() for s in migration.statements(settings)]


def test_without_a_cluster_the_statements_are_unchanged() -> None:
    single = Settings(clickhouse_database="db")
    assert not any("ON CLUSTER" in s or "Replicated" in s or "Distributed" in s for s in _all(single))


def test_every_statement_runs_on_the_cluster() -> None:
    assert all(" ON CLUSTER 'billing_cluster' " in f"{s} " for s in _all(CLUSTER))


def test_every_table_is_replicated_data_behind_a_distributed_table_of_the_same_name() -> None:
    statements = _all(CLUSTER)
    created = [CREATE.match(s).group(1) for s in statements if CREATE.match(s)]
    single = [CREATE.match(s).group(1) for s in _all(Settings(clickhouse_database="db")) if CREATE.match(s)]
    assert sorted(created) == sorted([*single, *(f"{t}_local" for t in single)])
    for table in single:
        (local,) = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS db.{table}_local ")]
        (distributed,) = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS db.{table} ")]
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/{{shard}}/db/{table}_local', '{{replica}}'", local)
        assert f"AS db.{table}_local ENGINE = Distributed('billing_cluster', 'db', '{table}_local', " in distributed


def test_customer_tables_are_sharded_by_customer_and_keep_their_version_column() -> None:
    statements = _all(CLUSTER)
    rollups = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS db.usage_rollups "))
    assert rollups.endswith("cityHash64(customer_id))")
    local = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS db.usage_rollups_local "))
    assert "'{replica}', version)" in local
    assert "ORDER BY (customer_id, meter, window_seconds, window_start, group_key)" in local
    dead = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS db.dead_letters "))
    assert dead.endswith("cityHash64(source_topic, time, cityHash64(payload)))"), "sharded by its whole sorting key"


def test_alter_changes_the_data_and_the_distributed_table() -> None:
    assert on_cluster("ALTER TABLE db.invoices ADD COLUMN IF NOT EXISTS x String", "c") == [
        "ALTER TABLE db.invoices_local ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x String",
        "ALTER TABLE db.invoices ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x String",
    ]


@pytest.mark.parametrize("statement", [
    "INSERT INTO db.t VALUES (1)",
    "CREATE TABLE IF NOT EXISTS db.t (a UInt8) ENGINE = Memory",
    "CREATE TABLE IF NOT EXISTS db.t (a UInt8) ENGINE = MergeTree",
])
def test_statements_it_cannot_place_are_refused(statement: str) -> None:
    with pytest.raises(ConfigError):
        on_cluster(statement, "c")
