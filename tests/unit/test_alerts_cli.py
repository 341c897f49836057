"""`billing alerts rules check`: lists valid rules, refuses bad ones with one line and no traceback."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from billing.cli import app, main
from billing.cli.app import console
from billing.core.alerts.errors import InvalidWebhook

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rows are read back one line each: a console wide enough never wraps them."""
    monkeypatch.setattr(console, "_width", 300)


def test_rules_lists_the_example_rules():
    result = runner.invoke(app, ["alerts", "rules", "check"])
    assert result.exit_code == 0, result.output
    rows = {row.split("│")[1].strip(): row for row in result.output.splitlines() if row.count("│") > 2}
    assert set(rows) == {"api-allowance", "bandwidth-1tb", "api-anomaly"}
    assert "usage in the period reaches 50, 80, 100 % of the plan's included units" in rows["api-allowance"]
    assert "reaches 500, 1,000 GB" in rows["bandwidth-1tb"] and "https://example.com/hooks/billing" in rows["bandwidth-1tb"]
    assert "same hour of the last 4 weeks reaches 7 and it changed by 80 % or more" in rows["api-anomaly"]
    assert "ok: 3 rule(s) in 1 path(s)" in result.output


def test_rules_validates_given_files(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {id: vip, kind: usage_threshold, meter: compute_seconds, thresholds: [3600], "
                    "customers: [cus-1, cus-2]}\n")
    result = runner.invoke(app, ["alerts", "rules", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "cus-1, cus-2" in result.output and "reaches 3,600 seconds" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: vip, kind: usage_threshold, meter: api_calls, thresholds: [1], webhook: 'ftp://x'}\n")
    refused = runner.invoke(app, ["alerts", "rules", "check", str(good), str(bad)])
    assert isinstance(refused.exception, InvalidWebhook)


def test_a_bad_rule_is_one_line_without_traceback(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: api, kind: usage_threshold, meter: api_calls, thresholds: [80, eighty]}\n")
    monkeypatch.setattr(sys, "argv", ["billing", "alerts", "rules", "check", str(bad)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr and stderr.startswith("error: ")
    assert "rule 'api' > thresholds[2]: 'eighty' is not a number" in " ".join(stderr.split())
