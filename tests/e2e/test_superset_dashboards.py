"""Simulated traffic -> warehouse -> dbt marts -> Superset, checked in a real headless Chromium.

Every dashboard of ``superset/assets`` is opened after a login through the login form; each chart
must answer rows from the warehouse and draw them without an error. Screenshots of every dashboard
go to ``docs/screenshots/`` (checked in, shown in the README).
"""

from __future__ import annotations

import json

import pytest

from billing.platform.superset import SupersetService
from billing.platform.superset_assets import ASSETS_DIR, asset_files
from billing.platform.superset_check import check_dashboards
from billing.warehouse.client import client
from tests.paths import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
DASHBOARDS = {"Revenue", "Payments", "Customers", "Usage", "Pipeline health"}
BUSINESS = DASHBOARDS - {"Pipeline health"}
NATIVE_FILTERS = {"Date range", "Region", "Plan", "Customer"}


@pytest.fixture(scope="module")
def unfiltered(superset: SupersetService) -> list[dict]:
    """The browser check of every dashboard, unfiltered, screenshots into :data:`SCREENSHOTS`: one
    run (each takes a minute or more) read by the tests below; nothing here changes Superset."""
    return check_dashboards(superset, SCREENSHOTS)


def test_every_dashboard_renders_every_chart_with_data(unfiltered: list[dict]) -> None:
    assert {board["title"] for board in unfiltered} >= DASHBOARDS
    for board in unfiltered:
        assert board["charts"], f"{board['title']} has no charts"
        failures = {c["name"]: c["problem"] for c in board["charts"] if c["problem"]}
        assert not failures, f"{board['title']}: {failures}; page errors: {board['page_errors']}"
        assert all(c["rows"] > 0 and c["drawn"] > 0 for c in board["charts"])
        shot = SCREENSHOTS / f"{board['slug']}.png"
        assert shot.stat().st_size > 20_000, f"{shot} looks empty"


def test_dashboards_match_the_version_controlled_assets(superset: SupersetService) -> None:
    files = asset_files(ASSETS_DIR)
    charts_in_files = sum(1 for name in files if name.startswith("charts/"))
    with superset.client() as api:
        boards = {b["dashboard_title"]: b for b in api.dashboards()}
        charts = {c["id"] for b in boards.values() for c in api.dashboard_charts(b["id"])}
    assert set(boards) >= DASHBOARDS
    assert len(charts) == charts_in_files


def test_business_dashboards_have_native_filters(superset: SupersetService) -> None:
    with superset.client() as api:
        for board in api.dashboards():
            if board["dashboard_title"] not in BUSINESS:
                continue
            metadata = json.loads(api.get(f"/api/v1/dashboard/{board['id']}")["result"]["json_metadata"])
            filters = {f["name"]: f for f in metadata["native_filter_configuration"]}
            assert set(filters) >= NATIVE_FILTERS, board["dashboard_title"]
            assert filters["Date range"]["filterType"] == "filter_time"
            columns = {f["targets"][0]["column"]["name"] for n, f in filters.items() if n != "Date range"}
            assert columns == {"region", "plan_id", "company_name"}


def test_a_native_filter_narrows_every_business_dashboard(superset: SupersetService, tmp_path) -> None:
    settings = superset.settings
    region = client(settings).query(
        f"SELECT region FROM {settings.clickhouse_marts_database}.dim_customer_invoices "
        "GROUP BY region ORDER BY count() DESC LIMIT 1").result_rows[0][0]
    report = {b["title"]: b for b in check_dashboards(superset, tmp_path, select={"Region": [region]})}

    for title in BUSINESS:
        failures = {c["name"]: c["problem"] for c in report[title]["charts"] if c["problem"]}
        assert not failures, f"{title} filtered to {region}: {failures}; page errors: {report[title]['page_errors']}"
    by_region = next(c for c in report["Revenue"]["charts"] if c["name"] == "Collected revenue by region")
    assert by_region["rows"] == 1


def test_pages_contact_nothing_outside_the_server(superset: SupersetService, unfiltered: list[dict]) -> None:
    """Superset's prebuilt frontend embeds an outside analytics pixel; the content security policy of
    superset_config.py must stop the browser before any request leaves the machine."""
    outside = [e for board in unfiltered for e in board["page_errors"]
               if e.startswith("failed ") and not e.split()[2].startswith(superset.endpoint)]
    assert all(e.endswith(": csp") for e in outside), outside
