"""Migrations against the real warehouse endpoint: apply, re-run as no-op, refuse edited files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from billing.core.errors import ConfigError
from billing.warehouse.client import client
from billing.warehouse.migrations import SCHEMA_DIR, migrate, pending


@pytest.fixture()
def scratch_settings(settings, warehouse):
    name = f"mig_{uuid.uuid4().hex[:8]}"
    scoped = settings.model_copy(update={"clickhouse_database": name, "clickhouse_marts_database": f"{name}_marts"})
    yield scoped
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")


def test_migrate_creates_every_table_and_rerun_is_a_no_op(scratch_settings):
    applied = migrate(scratch_settings)
    assert [m.version for m in applied] == [m.version for m in sorted(applied, key=lambda m: m.version)]
    assert len(applied) >= 2
    tables = set(client(scratch_settings).query(
        "SELECT name FROM system.tables WHERE database = {db:String}",
        parameters={"db": scratch_settings.clickhouse_database},
    ).result_columns[0])
    assert {"usage_events", "usage_rollups", "invoices", "invoice_lines", "payment_events",
            "payment_transactions", "customers", "subscription_events", "dead_letters",
            "schema_migrations"} <= tables
    assert migrate(scratch_settings) == []
    assert pending(scratch_settings) == []


def test_editing_an_applied_migration_is_refused(scratch_settings, tmp_path):
    for path in SCHEMA_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    migrate(scratch_settings, directory=tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(ConfigError, match="changed after it was applied"):
        migrate(scratch_settings, directory=tmp_path)


def test_subscriptions_recorded_before_billing_time_read_as_they_were_billed(scratch_settings, tmp_path):
    """Before migration 0009 the engine billed yearly subscriptions on their anniversary and monthly ones by
    the calendar: their stored events keep that meaning after the migration."""
    later = sorted(SCHEMA_DIR.glob("*.sql"))
    for path in later[:[p.name for p in later].index("0009_subscription_billing_time.sql")]:
        shutil.copy(path, tmp_path / path.name)
    migrate(scratch_settings, directory=tmp_path)
    ch = client(scratch_settings)
    table = f"{scratch_settings.clickhouse_database}.subscription_events"
    ch.command(f"INSERT INTO {table} (event_id, subscription_id, customer_id, billing_interval) "
               "VALUES ('e-year', 's-year', 'c-1', 'year'), ('e-month', 's-month', 'c-2', 'month')")
    shutil.copy(SCHEMA_DIR / "0009_subscription_billing_time.sql", tmp_path)
    migrate(scratch_settings, directory=tmp_path)
    rows = ch.query(f"SELECT subscription_id, billing_time FROM {table} ORDER BY subscription_id").result_rows
    assert rows == [("s-month", "calendar"), ("s-year", "anniversary")]


def test_sql_warns_when_a_versioned_table_is_read_without_final(scratch_settings):
    migrate(scratch_settings)
    env = {**os.environ, "BILLING_CLICKHOUSE_URL": scratch_settings.clickhouse_url,
           "BILLING_CLICKHOUSE_DATABASE": scratch_settings.clickhouse_database}
    billing = str(Path(sys.executable).with_name("billing"))

    def sql(query: str) -> subprocess.CompletedProcess:
        return subprocess.run([billing, "sql", query], env=env, capture_output=True, text=True, timeout=120)

    plain = sql("SELECT count() AS n FROM invoices")
    warning = " ".join(plain.stderr.split())
    assert plain.returncode == 0 and "1 row(s)" in plain.stdout
    assert "invoices is versioned" in warning and "`invoices FINAL`" in warning
    final = sql("SELECT count() AS n FROM invoices FINAL")
    assert final.returncode == 0 and final.stderr == ""
    assert sql("SELECT count() FROM pipeline_metrics m JOIN grant_revocations g ON 1").stderr == ""
