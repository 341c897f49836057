"""dbt-clickhouse (unmodified) against the local warehouse endpoint, with a tiny dbt project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import clickhouse_connect
import pytest

from billing.settings import Settings

PROJECT = Path(__file__).with_name("dbt_tiny")
SCHEMA = "wh_dbt_tiny"


@pytest.fixture(scope="module")
def dbt_dirs(warehouse, settings: Settings, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the tiny project and a profiles dir pointing at the test endpoint."""
    root = tmp_path_factory.mktemp("dbt")
    project = root / "project"
    shutil.copytree(PROJECT, project)
    host, port = settings.clickhouse_url.rsplit("/", 1)[-1].split(":")
    (root / "profiles.yml").write_text(
        "dbt_tiny:\n"
        "  target: local\n"
        "  outputs:\n"
        "    local:\n"
        "      type: clickhouse\n"
        "      driver: http\n"
        f"      host: {host}\n"
        f"      port: {port}\n"
        f"      user: {settings.clickhouse_user}\n"
        f"      password: '{settings.clickhouse_password}'\n"
        f"      schema: {SCHEMA}\n"
        "      threads: 2\n"
    )
    return project, root


def dbt(dirs: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess:
    project, profiles = dirs
    command = [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(project),
               "--profiles-dir", str(profiles)]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(profiles / "logs")}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=project, timeout=600)


def test_dbt_seed_run_and_test_pass(dbt_dirs: tuple[Path, Path], settings: Settings) -> None:
    for step in (["seed"], ["run"], ["test", "--exclude", "tag:deliberately_failing"]):
        result = dbt(dbt_dirs, *step)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    host, port = settings.clickhouse_url.rsplit("/", 1)[-1].split(":")
    client = clickhouse_connect.get_client(host=host, port=int(port), username=settings.clickhouse_user,
                                           password=settings.clickhouse_password)
    rows = client.query(
        f"SELECT customer_id, meter, toString(usage_date), quantity, events FROM {SCHEMA}.fct_tiny_daily_usage "
        "ORDER BY customer_id, meter, usage_date"
    ).result_rows
    assert rows == [
        ("c1", "api_calls", "2024-01-01", 15, 2),
        ("c2", "api_calls", "2024-01-01", 7, 1),
        ("c2", "storage_gb", "2024-01-02", 2, 1),
        ("c3", "api_calls", "2024-01-02", 1, 1),
    ]
    client.close()


def test_a_failing_data_test_makes_dbt_test_fail(dbt_dirs: tuple[Path, Path]) -> None:
    assert dbt(dbt_dirs, "seed").returncode == 0
    assert dbt(dbt_dirs, "run").returncode == 0
    result = dbt(dbt_dirs, "test", "--select", "tag:deliberately_failing")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "no_customer_over_ten" in result.stdout and "FAIL 1" in result.stdout
