"""Superset reaches ClickHouse as the read-only user: nothing it runs can change the warehouse."""

from __future__ import annotations

import json
import subprocess

import pytest

from billing.platform.superset import SupersetService
from billing.settings import Settings
from billing.warehouse.client import client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAREHOUSE = "billing warehouse"
WRITES = [
    "INSERT INTO {db}.dead_letters (time, source_topic, reason, payload) VALUES (now(), 'usage', 'superset', 'x')",
    "CREATE TABLE {db}.superset_was_here (x UInt8) ENGINE = Memory",
    "DROP TABLE {db}.dead_letters",
]


def writes(settings: Settings) -> list[str]:
    return [statement.format(db=settings.clickhouse_database) for statement in WRITES]

# Runs inside Superset's virtualenv: the registered connection's own SQLAlchemy engine.
ENGINE_PROBE = """
import json, sys
from superset.app import create_app
app = create_app()
with app.app_context():
    from superset.extensions import db
    from superset.models.core import Database
    database = db.session.query(Database).filter_by(database_name=sys.argv[1]).one()
    out = {"user": database.url_object.username, "backend": database.backend, "writes": []}
    with database.get_sqla_engine() as engine, engine.connect() as conn:
        statements = json.loads(sys.argv[2])
        out["rows"] = conn.exec_driver_sql(statements[0]).scalar()
        for statement in statements[1:]:
            try:
                conn.exec_driver_sql(statement)
                out["writes"].append("")
            except Exception as exc:
                out["writes"].append(str(exc))
    print(json.dumps(out))
"""


def count_sql(settings: Settings) -> str:
    return f"SELECT count() FROM {settings.clickhouse_database}.dead_letters"


def dead_letter_count(settings: Settings) -> int:
    return client(settings).query(count_sql(settings)).result_rows[0][0]


def test_registered_connection_uses_the_readonly_user_and_cannot_write(superset: SupersetService) -> None:
    settings = superset.settings
    before = dead_letter_count(settings)
    done = subprocess.run([str(superset.bin("python")), "-c", ENGINE_PROBE, WAREHOUSE,
                           json.dumps([count_sql(settings), *writes(settings)])],
                          env={**superset.environment(), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300, cwd=superset.home)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    assert probe["user"] == settings.clickhouse_readonly_user
    assert probe["backend"] == "clickhousedb"
    assert probe["rows"] == before  # the connection reads
    assert len(probe["writes"]) == len(WRITES)
    for statement, error in zip(writes(settings), probe["writes"], strict=True):
        assert "readonly" in error.lower(), f"{statement!r} was not refused as read-only: {error!r}"
    assert dead_letter_count(settings) == before
    tables = client(settings).query(f"SHOW TABLES FROM {settings.clickhouse_database}").result_rows
    assert "superset_was_here" not in {row[0] for row in tables}


def test_sql_lab_refuses_writes(superset: SupersetService) -> None:
    settings = superset.settings
    before = dead_letter_count(settings)
    with superset.client() as api:
        database_id = api.database_id(WAREHOUSE)
        read = api.post("/api/v1/sqllab/execute/", {"database_id": database_id, "sql": "SELECT 1 AS one",
                                                    "runAsync": False, "schema": settings.clickhouse_marts_database})
        assert read.status_code == 200, read.text
        assert read.json()["data"] == [{"one": 1}]
        for statement in writes(settings):
            response = api.post("/api/v1/sqllab/execute/", {"database_id": database_id, "sql": statement,
                                                            "runAsync": False})
            assert response.status_code >= 400, f"SQL Lab ran {statement!r}: {response.text[:300]}"
    assert dead_letter_count(settings) == before
