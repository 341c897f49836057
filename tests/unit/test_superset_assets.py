"""Dashboards as code: the YAML folder <-> Superset's import/export zip, and the pinned venv."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import zipfile

import pytest
import yaml

from billing.core.errors import ConfigError
from billing.platform.superset import REQUIREMENTS, SupersetService
from billing.platform.superset_assets import asset_files, bundle, unbundle, warehouse_uri
from billing.settings import Settings
from streams.metrics import COUNTERS, GAUGES


def settings(**overrides) -> Settings:
    return Settings(**{"clickhouse_url": "http://127.0.0.1:18123", **overrides})


def test_uri_uses_the_readonly_user_and_the_marts_database() -> None:
    uri = warehouse_uri(settings(clickhouse_readonly_user="dash boards"))
    assert uri == "clickhousedb://dash%20boards:XXXXXXXXXX@127.0.0.1:18123/billing_marts"
    secure = warehouse_uri(settings(clickhouse_url="https://ch.example.com"))
    assert secure == "clickhousedb://dashboards:XXXXXXXXXX@ch.example.com:8443/billing_marts?secure=true"


def test_bundle_points_the_database_at_the_configured_warehouse() -> None:
    archive, passwords = bundle(settings(clickhouse_readonly_password="s3cret"))
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        metadata = yaml.safe_load(zf.read("billing_assets/metadata.yaml"))
        database = yaml.safe_load(zf.read("billing_assets/databases/billing_warehouse.yaml"))
    assert metadata["type"] == "assets"
    assert database["sqlalchemy_uri"] == "clickhousedb://dashboards:XXXXXXXXXX@127.0.0.1:18123/billing_marts"
    assert database["allow_dml"] is False
    assert passwords == {"databases/billing_warehouse.yaml": "s3cret"}
    assert len(names) == len(asset_files()) + 1


def test_every_chart_and_dashboard_refers_to_a_known_asset() -> None:
    files = {name: yaml.safe_load(text) for name, text in asset_files().items()}
    datasets = {c["uuid"] for n, c in files.items() if n.startswith("datasets/")}
    databases = {c["uuid"] for n, c in files.items() if n.startswith("databases/")}
    charts = {c["uuid"] for n, c in files.items() if n.startswith("charts/")}
    assert all(c["database_uuid"] in databases for n, c in files.items() if n.startswith("datasets/"))
    assert all(c["dataset_uuid"] in datasets for n, c in files.items() if n.startswith("charts/"))
    on_dashboards = {node["meta"]["uuid"] for n, c in files.items() if n.startswith("dashboards/")
                     for node in c["position"].values() if isinstance(node, dict) and node.get("type") == "CHART"}
    assert on_dashboards == charts


def test_pipeline_charts_read_metrics_the_worker_writes() -> None:
    files = {name: yaml.safe_load(text) for name, text in asset_files().items()}
    filters = [f["sqlExpression"] for name, chart in files.items() if name.startswith("charts/")
               for f in chart["params"].get("adhoc_filters", []) if "metric" in (f.get("sqlExpression") or "")]
    named = {name for expression in filters for name in re.findall(r"'(\w+)'", expression)}
    assert "stalled_partitions" in named and "consumer_lag" in named
    assert named <= set(COUNTERS) | set(GAUGES), sorted(named - set(COUNTERS) - set(GAUGES))
    board = files["dashboards/Pipeline_health.yaml"]
    assert "Stalled partitions" in {node["meta"].get("sliceName") for node in board["position"].values()
                                    if isinstance(node, dict) and node.get("type") == "CHART"}


def test_unbundle_writes_stable_names_keeps_the_uri_and_removes_stale_files(tmp_path) -> None:
    (tmp_path / "databases").mkdir()
    (tmp_path / "databases" / "wh.yaml").write_text("sqlalchemy_uri: clickhousedb://dashboards:X@127.0.0.1:8123/m\n")
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "Deleted_in_the_UI.yaml").write_text("slice_name: gone\n")
    export = io.BytesIO()
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("dashboard_export_20260101/metadata.yaml", "version: 1.0.0\n")
        zf.writestr("dashboard_export_20260101/databases/wh.yaml",
                    "database_name: wh\nsqlalchemy_uri: clickhousedb://dashboards:X@10.1.2.3:18123/m\n")
        zf.writestr("dashboard_export_20260101/charts/Revenue_12.yaml", "slice_name: Revenue\n")
        zf.writestr("dashboard_export_20260101/charts/Revenue_13.yaml", "slice_name: Revenue again\n")
    written = unbundle(export.getvalue(), tmp_path)
    assert written == ["charts/Revenue.yaml", "charts/Revenue_13.yaml", "databases/wh.yaml"]
    assert not (tmp_path / "charts" / "Deleted_in_the_UI.yaml").exists()
    assert not (tmp_path / "metadata.yaml").exists()
    database = yaml.safe_load((tmp_path / "databases" / "wh.yaml").read_text())
    assert database == {"database_name": "wh", "sqlalchemy_uri": "clickhousedb://dashboards:X@127.0.0.1:8123/m"}


def test_a_folder_without_dashboards_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no dashboards"):
        asset_files(tmp_path)


def test_requirements_are_all_exact_pins() -> None:
    lines = [line for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in lines), lines
    names = {line.split("==")[0].lower().replace("_", "-") for line in lines}
    assert {"apache-superset", "clickhouse-connect", "flask-caching", "rich", "cachetools", "gunicorn",
            "playwright"} <= names
    pins = dict(line.lower().split("==") for line in lines)
    assert tuple(map(int, pins["flask-caching"].split(".")[:2])) < (2, 4)  # 2.5 breaks `superset db upgrade`
    assert int(pins["clickhouse-connect"].split(".")[0]) >= 1  # the [clickhouse] extra would pin < 1.0


def test_secret_key_is_generated_once_private_and_never_a_default(tmp_path) -> None:
    svc = SupersetService(settings(state_dir=tmp_path))
    key = svc.secret_key()
    assert len(key) >= 40
    assert svc.secret_key() == key
    assert (svc.home / "secret_key").stat().st_mode & 0o077 == 0
    assert SupersetService(settings(state_dir=tmp_path / "other")).secret_key() != key
    given = SupersetService(settings(state_dir=tmp_path, superset_secret_key="from-the-operator"))
    assert given.environment()["SUPERSET_SECRET_KEY"] == "from-the-operator"


def test_dataset_sql_names_databases_only_through_the_configured_macros() -> None:
    hard_coded = re.compile(r"\b(?:from|join)\s+(\w+)\.\w+", re.IGNORECASE)
    for name, text in asset_files().items():
        if name.startswith("datasets/"):
            sql = yaml.safe_load(text)["sql"]
            assert not hard_coded.findall(sql), f"{name} names a database literally"
            assert re.search(r"\b(?:from|join)\s+\{\{ (raw|marts)_database \}\}\.\w+", sql), name


def test_cli_reports_a_stopped_superset_in_one_line(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "BILLING_SUPERSET_PORT": str(port), "BILLING_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "billing", "superset", "export", "--to", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: cannot reach Superset at http://127.0.0.1:")
    assert "billing superset up" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


D3_FORMAT = re.compile(r"(.?[<>=^])?[-+( ]?[$#]?0?\d*,?(\.\d+)?~?[%bcdefgnoprsxX]?")
NAMED_FORMATS = {"SMART_NUMBER", "DURATION", "DURATION_SUB", "smart_date"}


def formats(node):
    """Every number format named anywhere in an asset (d3format, y_axis_format, number_format...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key == "d3format" or key.endswith("_format")) and "time" not in key:
                yield key, value
            else:
                yield from formats(value)
    elif isinstance(node, list):
        for item in node:
            yield from formats(item)


def test_every_number_format_is_one_superset_knows() -> None:
    found = [(name, key, value) for name, text in asset_files().items()
             for key, value in formats(yaml.safe_load(text)) if value]
    assert found
    for name, key, value in found:
        assert value in NAMED_FORMATS or D3_FORMAT.fullmatch(value), f"{name}: {key} {value!r}"
