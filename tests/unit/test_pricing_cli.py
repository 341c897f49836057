"""`billing plans ...` commands."""

from __future__ import annotations

from typer.testing import CliRunner

from billing.cli import app
from billing.core.errors import ConfigError
from tests.paths import REPO_ROOT

runner = CliRunner()


def test_quote_prices_ad_hoc_usage_with_coupon_tax_and_credits(tmp_path):
    result = runner.invoke(app, [
        "plans", "quote", "--plan", "growth", "-u", "api_calls=12345678", "-u", "compute_seconds=7201",
        "--country", "US", "--region", "NY", "--coupon", "launch20", "--credits", "100", "--month", "2024-02-10",
        "--pdf", str(tmp_path / "quote.pdf"),
    ], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2,484.57 USD" in result.output and "amount due      2,049.66 USD" in result.output
    assert (tmp_path / "quote.pdf").read_bytes().startswith(b"%PDF")


def test_validate_accepts_the_examples_and_rejects_bad_files(tmp_path):
    ok = runner.invoke(app, ["plans", "validate", str(REPO_ROOT / "billing" / "core" / "plans")])
    assert ok.exit_code == 0 and "82 plan(s), 3 coupon(s), 14 tax rule(s)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("plans:\n  - {id: pro, name: Pro, currency: USD, charges: [{id: fee, model: flat, amount: -1}]}\n")
    result = runner.invoke(app, ["plans", "validate", str(bad)])
    assert isinstance(result.exception, ConfigError)
    assert "plan 'pro' > charge 'fee' > amount: Input should be greater than or equal to 0" in str(result.exception)


def test_show_and_list_and_bad_usage():
    shown = runner.invoke(app, ["plans", "show", "business_eur"], terminal_width=200)
    assert shown.exit_code == 0 and "0.00011" in shown.output and "volume" in shown.output
    listed = runner.invoke(app, ["plans", "list"], terminal_width=200).output
    assert "enterprise_jpy" in listed
    coupons = [" ".join(cell.strip() for cell in row.split("│")[1:-1]) for row in listed.split("coupons")[1].splitlines()]
    assert {"launch20 Launch offer 20% off first 3 invoice(s)", "welcome50 Welcome credit 50.00 USD off first 1 invoice(s)",
            "partner10 Partner discount 10% off every invoice"} <= set(coupons)
    bad = runner.invoke(app, ["plans", "quote", "--plan", "starter", "-u", "api_calls"])
    assert isinstance(bad.exception, ConfigError) and "expected meter=quantity" in str(bad.exception)
