"""The dbt project's files, the plan seed, the environment dbt runs with, and the report questions."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest
import yaml

from billing.analytics import report
from billing.analytics.dbt_project import (
    PLAN_COLUMNS,
    PLAN_SEED,
    PROJECT_DIR,
    check_warehouse,
    dbt_env,
    plan_rows,
    write_plan_seed,
)
from billing.core.errors import ConfigError, ServiceUnavailable
from billing.core.pricing.catalog import builtin_catalog
from billing.settings import Settings

MODELS = sorted((PROJECT_DIR / "models").rglob("*.sql"))


def test_every_model_has_a_yml_beside_it_describing_it_and_each_column() -> None:
    assert len(MODELS) > 40
    for sql in MODELS:
        doc = yaml.safe_load(sql.with_suffix(".yml").read_text())
        (model,) = doc["models"]
        assert model["name"] == sql.stem and model["description"], sql
        assert model["columns"] and all(c.get("description") for c in model["columns"]), sql


def test_model_layers_follow_the_naming_convention() -> None:
    prefixes = {"staging": "stg_", "intermediate": "int_", "marts": ("fct_", "dim_"), "reports": "rpt_"}
    for sql in MODELS:
        assert sql.stem.startswith(prefixes[sql.parent.name]), sql


def test_required_marts_exist() -> None:
    names = {sql.stem for sql in MODELS}
    assert {"fct_transaction", "fct_usage_hourly", "fct_usage_daily", "fct_invoice_line", "dim_customer",
            "dim_customer_invoices", "dim_payment_details", "dim_revenue_adjustments", "dim_date", "dim_plan",
            "fct_mrr", "fct_mrr_movements"} <= names


def test_checked_in_plan_seed_is_the_builtin_catalog() -> None:
    with (PROJECT_DIR / PLAN_SEED).open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == PLAN_COLUMNS
    assert rows[1:] == [[str(v) for v in row] for row in plan_rows(builtin_catalog())]


def test_plan_rows_sum_flat_fees_and_list_meters(tmp_path: Path) -> None:
    rows = {row[0]: row for row in plan_rows(builtin_catalog())}
    growth = rows["growth"]
    assert growth[1:] == ("growth", "Growth", "USD", "month", growth[5], growth[6], "api_calls,compute_seconds", 3)
    assert str(growth[5]) == "99.00" and str(growth[6]) == "250.00"
    assert rows["business_yearly_aud"][1] == "business" and str(rows["business_aud"][5]) == "748.50"
    assert write_plan_seed(builtin_catalog(), tmp_path / "plans.csv") == len(rows)


def test_dbt_env_exports_the_settings_dbt_reads(tmp_path: Path) -> None:
    settings = Settings(clickhouse_url="https://ch.example:9440", clickhouse_database="raw_x",
                        clickhouse_marts_database="marts_x", clickhouse_password="s3cret", state_dir=tmp_path)
    env = dbt_env(settings, target="prod")
    assert env["BILLING_CLICKHOUSE_URL"] == "https://ch.example:9440"
    assert (env["BILLING_CLICKHOUSE_DATABASE"], env["BILLING_CLICKHOUSE_MARTS_DATABASE"]) == ("raw_x", "marts_x")
    assert env["BILLING_CLICKHOUSE_PASSWORD"] == "s3cret" and env["BILLING_DBT_TARGET"] == "prod"
    assert env["DBT_TARGET_PATH"] == str(tmp_path / "dbt" / "target")
    assert env["BILLING_CLICKHOUSE_CLUSTER"] == ""
    assert dbt_env(settings.model_copy(update={"clickhouse_cluster": "c1"}))["BILLING_CLICKHOUSE_CLUSTER"] == "c1"


def test_profiles_read_every_connection_setting_from_billing_env_vars() -> None:
    text = (PROJECT_DIR / "profiles.yml").read_text()
    profile = yaml.safe_load(text)["billing"]
    assert set(profile["outputs"]) == {"local", "prod"}
    for output in profile["outputs"].values():
        for key in ("host", "port", "user", "password", "schema", "cluster"):
            assert "env_var('BILLING_" in str(output[key]), key


def test_questions_come_from_the_report_models() -> None:
    questions = report.questions()
    assert len(questions) >= 25
    for name in ("payments_per_day", "payments_per_week", "payments_per_month", "payment_methods_usage",
                 "payment_failures", "revenue_by_method", "revenue_by_region", "outstanding_payments",
                 "delayed_payments", "customer_ltv", "payment_frequency", "payment_disputes", "revenue_by_country",
                 "revenue_by_region_over_time", "billing_seasonality", "busiest_payment_days",
                 "busiest_payment_hours", "payment_processing_time", "payment_success_rate", "payment_retries",
                 "payment_status_patterns", "average_payment_amount", "average_payment_per_customer"):
        assert questions[name].text.endswith("?") and questions[name].model == f"rpt_{name}"


def test_resolve_rejects_unknown_questions() -> None:
    known = report.questions()
    assert report.resolve([], known) == list(known.values())
    assert [q.name for q in report.resolve(["payment_retries"], known)] == ["payment_retries"]
    with pytest.raises(ConfigError, match="unknown question"):
        report.resolve(["payment_retries", "nope"], known)


def test_a_report_model_without_question_meta_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rpt_x.yml").write_text("version: 2\nmodels:\n  - name: rpt_x\n    description: x\n")
    with pytest.raises(ConfigError, match="meta.question"):
        report.questions(tmp_path)


def test_a_down_warehouse_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(clickhouse_url=f"http://127.0.0.1:{port}", state_dir=tmp_path)
    with pytest.raises(ServiceUnavailable, match=f"cannot reach ClickHouse at http://127.0.0.1:{port}.*billing up"):
        check_warehouse(settings)
