"""The cluster schema checked by the real ClickHouse parser: every statement the migrations render
for ``BILLING_CLICKHOUSE_CLUSTER`` goes through ``formatQuery`` of the local engine (no Keeper runs
here, so the statements are parsed, not executed)."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from billing.settings import Settings
from billing.warehouse.client import client
from billing.warehouse.migrations import discover, ledger_statements


def _format(settings: Settings, statement: str) -> str:
    return client(settings).query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]


def test_every_cluster_statement_parses(warehouse, settings: Settings) -> None:
    cluster = settings.model_copy(update={"clickhouse_cluster": "billing_cluster"})
    statements = ledger_statements(cluster) + [s for m in discover() for s in m.statements(cluster)]
    assert len(statements) > 30
    for statement in statements:
        formatted = _format(settings, statement)
        assert "ON CLUSTER billing_cluster" in formatted, statement
        assert ("ENGINE = Distributed(" in formatted or "ENGINE = Replicated" in formatted
                or not formatted.startswith("CREATE TABLE")), formatted


def test_the_parser_rejects_a_broken_statement(warehouse, settings: Settings) -> None:
    with pytest.raises(DatabaseError, match="Syntax error"):
        _format(settings, "CREATE TABLE db.t ON CLUSTER c (a UInt8) ENGINE = ReplicatedMergeTree('/p', '{replica}' ORDER BY a")
