"""The cluster schema checked by the real ClickHouse parser: every statement the migrations render
for ``BILLING_CLICKHOUSE_CLUSTER`` goes through ``formatQuery`` of the local engine (no Keeper runs
here, so the statements are parsed, not executed)."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from billing.analytics.dbt_project import dbt_env, dbt_executable, working_copy
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


RENDER_DDL = """
{% macro render_table_ddl(identifier) %}
  {%- set relation = api.Relation.create(schema=target.schema, identifier=identifier,
                                         can_on_cluster=adapter.should_on_cluster('table', engine_clause())) -%}
  {{ print(create_table_or_empty(False, relation, 'select 1 as x', False)) }}
{% endmacro %}
"""


@pytest.mark.parametrize("cluster", ["billing_cluster", None])
def test_dbt_creates_the_marts_on_the_cluster_with_replicated_engines(warehouse, settings: Settings, tmp_path,
                                                                      cluster: str | None) -> None:
    """dbt-clickhouse's own table DDL (the table materialization's statement), rendered by the project with its
    profile and macros for BILLING_CLICKHOUSE_CLUSTER and parsed by the engine (no Keeper here to run it)."""
    marts = f"marts_cluster_{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"clickhouse_cluster": cluster, "clickhouse_marts_database": marts,
                                      "state_dir": tmp_path})
    project = working_copy(own)
    (project / "macros" / "render_table_ddl.sql").write_text(RENDER_DDL)
    ch = client(settings)
    ch.command(f"CREATE DATABASE {marts}")
    try:
        result = subprocess.run([dbt_executable(), "--quiet", "run-operation", "render_table_ddl", "--args",
                                 "{identifier: dim_date}", "--project-dir", str(project), "--profiles-dir", str(project)],
                                env=dbt_env(own), cwd=project, capture_output=True, text=True, check=False)
    finally:
        ch.command(f"DROP DATABASE {marts}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    formatted = _format(settings, result.stdout[result.stdout.index("create table"):])
    assert formatted.startswith(f"CREATE TABLE {marts}.dim_date")
    if cluster:
        assert "ON CLUSTER billing_cluster" in formatted and "ENGINE = ReplicatedMergeTree" in formatted, formatted
    else:
        assert "ON CLUSTER" not in formatted and "ENGINE = MergeTree" in formatted, formatted
