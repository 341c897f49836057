"""Superset reaches ClickHouse as the read-only user: nothing it runs can change the warehouse."""

from __future__ import annotations

import json
import subprocess

import pytest

from billing.clickhouse import client
from billing.platform.superset import SupersetService
from billing.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WAREHOUSE = "billing warehouse"
WRITES = [
    "INSERT INTO billing.dead_letters (time, source_topic, reason, payload) VALUES (now(), 'usage', 'superset', 'x')",
    "CREATE TABLE billing.superset_was_here (x UInt8) ENGINE = Memory",
    "DROP TABLE billing.dead_letters",
]

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
        out["rows"] = conn.exec_driver_sql("SELECT count() FROM billing.dead_letters").scalar()
        for statement in json.loads(sys.argv[2]):
            try:
                conn.exec_driver_sql(statement)
                out["writes"].append("")
            except Exception as exc:
                out["writes"].append(str(exc))
    print(json.dumps(out))
"""


def dead_letter_count(settings: Settings) -> int:
    return client(settings).query("SELECT count() FROM billing.dead_letters").result_rows[0][0]


def test_registered_connection_uses_the_readonly_user_and_cannot_write(superset: SupersetService,
                                                                       settings: Settings) -> None:
    before = dead_letter_count(settings)
    done = subprocess.run([str(superset.bin("python")), "-c", ENGINE_PROBE, WAREHOUSE, json.dumps(WRITES)],
                          env={**superset.environment(), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300, cwd=superset.home)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    assert probe["user"] == settings.clickhouse_readonly_user
    assert probe["backend"] == "clickhousedb"
    assert probe["rows"] == before  # the connection reads
    for statement, error in zip(WRITES, probe["writes"]):
        assert "readonly" in error.lower(), f"{statement!r} was not refused as read-only: {error!r}"
    assert dead_letter_count(settings) == before
    assert "superset_was_here" not in {r[0] for r in client(settings).query("SHOW TABLES FROM billing").result_rows}


def test_sql_lab_refuses_writes(superset: SupersetService, settings: Settings) -> None:
    before = dead_letter_count(settings)
    with superset.client() as api:
        database_id = api.database_id(WAREHOUSE)
        read = api.post("/api/v1/sqllab/execute/", {"database_id": database_id, "sql": "SELECT 1 AS one",
                                                    "runAsync": False, "schema": settings.clickhouse_marts_database})
        assert read.status_code == 200, read.text
        assert read.json()["data"] == [{"one": 1}]
        for statement in WRITES:
            response = api.post("/api/v1/sqllab/execute/", {"database_id": database_id, "sql": statement,
                                                            "runAsync": False})
            assert response.status_code >= 400, f"SQL Lab ran {statement!r}: {response.text[:300]}"
    assert dead_letter_count(settings) == before
