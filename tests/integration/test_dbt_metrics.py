"""The semantic layer (dbt/models/marts/_metrics.yml): `dbt parse` validates it, every number of the
README's definitions table is one metric there, and each metric, evaluated from its own definition in
the semantic manifest, gives the number the `billing report` answer for the same question gives."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.marts_data import BuiltMarts, billing_cli

README = Path(__file__).resolve().parents[2] / "README.md"

# The README's definitions table (first column) -> the metrics defining those numbers.
NUMBERS = {
    "booked": {"booked"},
    "recognized": {"recognized"},
    "deferred / unbilled": {"deferred", "unbilled"},
    "collected": {"collected"},
    "outstanding / overdue": {"outstanding", "overdue"},
    "MRR / ARR": {"mrr", "arr"},
    "new / expansion / contraction / churned MRR, logo churn, NRR":
        {"new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "logo_churn", "net_revenue_retention"},
    "success rate": {"payment_success_rate"},
}
# Numbers of the table that are not amounts over time: a per-meter quantity and a breakdown of booked.
NOT_METRICS = {"usage quantity", "usage revenue"}
# Ratios are rounded to 4 places by ClickHouse (floats: half to even) and here (Decimal): a tie may differ by one unit.
TIE = Decimal("0.0001")


def _readme_numbers() -> set[str]:
    table = README.read_text().split("| number | definition | where |", 1)[1].split("\n\n", 1)[0]
    return {line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("|")}


@pytest.fixture(scope="module")
def semantic(marts: BuiltMarts) -> dict:
    result = billing_cli(marts.settings, "dbt", "parse")
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads((marts.settings.state_dir / "dbt" / "target" / "semantic_manifest.json").read_text())


def _measure(semantic: dict, name: str) -> tuple[dict, dict]:
    for model in semantic["semantic_models"]:
        for measure in model["measures"]:
            if measure["name"] == name:
                return model, measure
    raise AssertionError(f"no measure {name}")


def _time_column(model: dict, measure: dict) -> str:
    name = measure.get("agg_time_dimension") or model["defaults"]["agg_time_dimension"]
    dimension = next(d for d in model["dimensions"] if d["name"] == name)
    return dimension.get("expr") or name


def _where(metric: dict) -> str:
    filters = (metric.get("filter") or {}).get("where_filters") or []
    sql = " and ".join(f["where_sql_template"] for f in filters) or "1"
    return re.sub(r"\{\{\s*Dimension\('\w+__(\w+)'\)\s*\}\}", r"\1", sql)


def _by_month(marts: BuiltMarts, semantic: dict, metric: dict, measure_name: str) -> dict:
    """``sum(measure)`` per month of its time dimension, from the semantic manifest's definition alone."""
    model, measure = _measure(semantic, measure_name)
    assert measure["agg"] == "sum"
    table = model["node_relation"]["alias"]
    rows = marts.query(f"SELECT toStartOfMonth({_time_column(model, measure)}) AS m, sum({measure.get('expr') or measure['name']}) "
                       f"FROM {table} WHERE {_where(metric)} GROUP BY m")
    return {month: Decimal(str(value)) for month, value in rows}


def _metric(semantic: dict, name: str) -> dict:
    return next(m for m in semantic["metrics"] if m["name"] == name)


def _value(marts: BuiltMarts, semantic: dict, name: str) -> dict:
    metric = _metric(semantic, name)
    params = metric["type_params"]
    if metric["type"] == "simple":
        return _by_month(marts, semantic, metric, params["measure"]["name"])
    numerator, denominator = (_value(marts, semantic, params[side]["name"]) for side in ("numerator", "denominator"))
    return {month: round(numerator.get(month, 0) / d, 4) for month, d in denominator.items() if d}


def _parts(semantic: dict) -> set[str]:
    """The metrics that are a ratio's numerator or denominator."""
    return {m["type_params"][side]["name"] for m in semantic["metrics"] if m["type"] == "ratio"
            for side in ("numerator", "denominator")}


def test_every_defined_number_is_one_metric(semantic: dict) -> None:
    assert _readme_numbers() == set(NUMBERS) | NOT_METRICS
    names = [m["name"] for m in semantic["metrics"]]
    assert len(names) == len(set(names))
    assert set(names) - _parts(semantic) == set().union(*NUMBERS.values())
    assert all(m["description"] and m["label"] for m in semantic["metrics"])


def test_metrics_give_the_numbers_of_the_reports(marts: BuiltMarts, semantic: dict) -> None:
    mrr = marts.query("SELECT month_start, sum(mrr_usd) FROM rpt_monthly_recurring_revenue GROUP BY month_start")
    assert mrr and _value(marts, semantic, "mrr") == {m: Decimal(str(v)) for m, v in mrr}
    movements = marts.query("SELECT month_start, new_mrr_usd, expansion_mrr_usd, contraction_mrr_usd, churned_mrr_usd, "
                            "logo_churn_rate, net_revenue_retention FROM rpt_mrr_movements")
    assert any(row[1] for row in movements), "the marts data has no new MRR to compare"
    names = ("new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "logo_churn", "net_revenue_retention")
    values = {name: _value(marts, semantic, name) for name in names}
    for month, *expected in movements:
        for name, number in zip(names, expected, strict=True):
            if number is not None:
                assert abs(values[name].get(month, 0) - Decimal(str(number))) <= TIE, (name, month)
    recognized = marts.query("SELECT month_start, sum(recognized_usd) FROM rpt_recognized_revenue GROUP BY month_start")
    assert recognized
    by_month = _value(marts, semantic, "recognized")
    assert all(by_month[m] == Decimal(str(v)) for m, v in recognized)


def test_payment_success_rate_is_the_reports_rate(marts: BuiltMarts, semantic: dict) -> None:
    metric = _metric(semantic, "payment_success_rate")
    totals = {}
    for side in ("numerator", "denominator"):
        part = _metric(semantic, metric["type_params"][side]["name"])
        model, measure = _measure(semantic, part["type_params"]["measure"]["name"])
        totals[side] = marts.query(f"SELECT sum({measure['expr']}) FROM {model['node_relation']['alias']}")[0][0]
    (expected,) = marts.query("SELECT success_rate FROM rpt_payment_success_rate WHERE method = 'all'")[0]
    assert totals["denominator"] > 0
    assert abs(round(Decimal(totals["numerator"]) / Decimal(totals["denominator"]), 4) - Decimal(str(expected))) <= TIE
