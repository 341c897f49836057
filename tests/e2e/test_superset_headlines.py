"""Every headline number of the business dashboards equals the `billing report` answer to the same
question: the big-number charts are queried through Superset's chart data API (the dataset's metric
as Superset runs it) and compared with the report views of the same marts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing.analytics import report
from billing.platform.superset import SupersetService
from billing.platform.superset_api import SupersetClient
from billing.settings import Settings
from tests.e2e.test_superset_dashboards import BUSINESS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Rows = list[dict]
MONEY, RATIO, COUNT = 0.01, 1e-4, 0


def total(column: str, name: str) -> Callable[[Callable[[str], Rows]], float]:
    return lambda answer: sum(float(row[column] or 0) for row in answer(name))


def last(column: str, name: str, key: str = "month_start") -> Callable[[Callable[[str], Rows]], float]:
    return lambda answer: float(max(answer(name), key=lambda row: row[key])[column])


def overall(column: str) -> Callable[[Callable[[str], Rows]], float]:
    return lambda answer: float(next(row for row in answer("payment_success_rate") if row["method"] == "all")[column])


def latest_mrr(answer: Callable[[str], Rows]) -> float:
    rows = answer("monthly_recurring_revenue")
    month = max(row["month_start"] for row in rows)
    return sum(float(row["mrr_usd"]) for row in rows if row["month_start"] == month)


# chart title -> (the billing report number of the same question, tolerance)
HEADLINES = {
    "Booked revenue": (total("booked_usd", "billing_seasonality"), MONEY),
    "Collected revenue": (total("revenue_usd", "revenue_by_region"), MONEY),
    "Monthly recurring revenue": (latest_mrr, MONEY),
    "Net revenue retention": (last("net_revenue_retention", "mrr_movements"), RATIO),
    "Logo churn": (last("logo_churn_rate", "mrr_movements"), RATIO),
    "Paying customers": (total("paying_customers", "revenue_by_country"), COUNT),
    "Outstanding": (total("total_usd", "outstanding_payments"), MONEY),
    "Overdue invoices": (total("overdue", "outstanding_payments"), COUNT),
    "Invoices paid late": (lambda answer: float(len(answer("delayed_payments"))), COUNT),
    "Transactions": (overall("transactions"), COUNT),
    "Payment success rate": (overall("success_rate"), RATIO),
    "Disputed payments": (total("disputes", "payment_disputes"), COUNT),
}
# headline charts no billing report question answers (live counters of the stream, not the marts)
NO_REPORT = {"Events in the last hour"}


def headline(api: SupersetClient, form: dict) -> float:
    """The number a big-number chart shows: its metric over everything, or its latest period's value."""
    extra = [f for f in form.get("adhoc_filters", []) if f.get("operator") != "TEMPORAL_RANGE"]
    assert not extra, f"{form['slice_id']}: headline charts must not filter ({extra})"
    query = {"metrics": [form["metric"]], "filters": [], "time_range": "No filter", "row_limit": 10000}
    if form["viz_type"] == "big_number":
        query["columns"] = [form["x_axis"]]
    response = api.post("/api/v1/chart/data", {
        "datasource": {"id": int(str(form["datasource"]).split("__")[0]), "type": "table"},
        "queries": [query], "result_format": "json", "result_type": "full", "force": True})
    assert response.status_code == 200, response.text[:500]
    rows = response.json()["result"][0]["data"]
    if form["viz_type"] == "big_number":
        rows = sorted(rows, key=lambda row: row[form["x_axis"]])
    return float(rows[-1][form["metric"]] or 0)


def answers(settings: Settings) -> Callable[[str], Rows]:
    known = report.questions()

    def answer(name: str) -> Rows:
        result = report.answer(settings, known[name])
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    return answer


def test_every_headline_number_equals_the_billing_report(superset: SupersetService) -> None:
    shown = {}
    with superset.client() as api:
        for board in api.dashboards():
            if board["dashboard_title"] not in BUSINESS:
                continue
            for chart in api.dashboard_charts(board["id"]):
                form = chart["form_data"]
                if form["viz_type"] in ("big_number", "big_number_total"):
                    shown[chart["slice_name"]] = headline(api, {**form, "slice_id": chart["slice_name"]})
    assert set(shown) - NO_REPORT == set(HEADLINES), "every headline chart needs its billing report number here"
    answer = answers(superset.settings)
    for name, (expected, tolerance) in HEADLINES.items():
        assert shown[name] == pytest.approx(expected(answer), abs=tolerance), name
