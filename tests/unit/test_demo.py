"""The demo's plan: steps are real commands, history covers last month."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from billing.cli.demo_cmds import demo_steps, earlier_window, last_month_start
from tests.unit.test_production_shape import resolves


def test_last_month_start_crosses_years():
    assert last_month_start(datetime(2026, 1, 15, 9, tzinfo=UTC)) == datetime(2025, 12, 1, tzinfo=UTC)
    assert last_month_start(datetime(2026, 11, 1, 0, 0, tzinfo=UTC)) == datetime(2026, 10, 1, tzinfo=UTC)


def test_every_demo_step_is_a_billing_command():
    for title, args in demo_steps(customers=10, events=100, seed=1):
        assert resolves(args), f"demo step {title!r} runs `billing {' '.join(args)}`, which is not a command"


def test_a_re_run_sends_the_same_history_as_the_earlier_run_of_the_same_size(tmp_path):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    config = {"customers": 200, "events": 300_000, "seed": 7, "start": start.isoformat(), "days": 32.697,
              "duplicate_rate": 0.01, "late_rate": 0.005, "malformed_rate": 0.001, "rate": None}
    (tmp_path / "summary.json").write_text(json.dumps({"config": config}))
    window = earlier_window(tmp_path, 200, 300_000, 7)
    assert window == (start, 32.697)
    simulate = dict(demo_steps(200, 300_000, 7, now=datetime(2027, 2, 3, tzinfo=UTC), window=window))[
        "simulate since last month, with duplicates, late and malformed events"]
    assert simulate[simulate.index("--start") + 1] == start.isoformat() and simulate[simulate.index("--days") + 1] == "32.6970"
    assert earlier_window(tmp_path, 200, 1_000, 7) is None
    assert earlier_window(tmp_path / "missing", 200, 300_000, 7) is None
    (tmp_path / "summary.json").write_text(json.dumps({"config": {**config, "late_rate": 0.5}}))
    assert earlier_window(tmp_path, 200, 300_000, 7) is None
