"""The demo's plan: steps are real commands, history covers two closed months and the open one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from billing.cli.demo_cmds import closed_months, demo_steps, earlier_window, months_back
from tests.unit.test_production_shape import resolves


def test_months_back_crosses_years():
    assert months_back(datetime(2026, 1, 15, 9, tzinfo=UTC), 1) == datetime(2025, 12, 1, tzinfo=UTC)
    assert months_back(datetime(2026, 11, 1, 0, 0, tzinfo=UTC), 1) == datetime(2026, 10, 1, tzinfo=UTC)
    assert months_back(datetime(2026, 2, 28, tzinfo=UTC)) == datetime(2025, 12, 1, tzinfo=UTC)
    assert months_back(datetime(2026, 1, 1, tzinfo=UTC), 13) == datetime(2024, 12, 1, tzinfo=UTC)


def simulate_args(steps):
    return next(args for _title, args in steps if args[0] == "simulate" and args[1] != "payers")


def test_the_demo_bills_finalizes_and_pays_two_closed_months():
    steps = demo_steps(200, 300_000, 7, now=datetime(2027, 1, 10, 15, tzinfo=UTC))
    simulate = simulate_args(steps)
    assert simulate[simulate.index("--start") + 1] == datetime(2026, 11, 1, tzinfo=UTC).isoformat()
    assert simulate[simulate.index("--days") + 1] == f"{(31 + 30 + 9 + 15 / 24):.4f}"
    runs = [args for _title, args in steps if args[:2] == ["invoice", "run"]]
    assert [(a[a.index("--period") + 1], a[a.index("--as-of") + 1], "--finalize" in a) for a in runs] == [
        ("2026-11", datetime(2026, 12, 1, 2, tzinfo=UTC).isoformat(), True),
        ("2026-12", datetime(2027, 1, 1, 2, tzinfo=UTC).isoformat(), True),
    ]
    commands = [args[:2] + args[3:4] for _title, args in steps]
    assert commands.index(["simulate", "payers", "2026-11"]) > commands.index(["invoice", "run", "2026-11"])
    assert commands.index(["simulate", "payers", "2026-12"]) > commands.index(["invoice", "run", "2026-12"])
    assert commands.index(["dbt", "build"]) > commands.index(["simulate", "payers", "2026-12"])


def test_closed_months_are_the_whole_months_of_the_window():
    nov = datetime(2026, 11, 1, tzinfo=UTC)
    assert closed_months(nov, datetime(2027, 1, 7, tzinfo=UTC)) == [nov, datetime(2026, 12, 1, tzinfo=UTC)]
    assert closed_months(nov, datetime(2027, 1, 1, tzinfo=UTC)) == [nov, datetime(2026, 12, 1, tzinfo=UTC)]
    assert closed_months(nov, datetime(2026, 12, 31, tzinfo=UTC)) == [nov]


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
    steps = demo_steps(200, 300_000, 7, now=datetime(2027, 2, 3, tzinfo=UTC), window=window)
    simulate = simulate_args(steps)
    assert simulate[simulate.index("--start") + 1] == start.isoformat() and simulate[simulate.index("--days") + 1] == "32.6970"
    assert [args[3] for _title, args in steps if args[:2] == ["invoice", "run"]] == ["2026-11"]  # the earlier run's months
    assert earlier_window(tmp_path, 200, 1_000, 7) is None
    assert earlier_window(tmp_path / "missing", 200, 300_000, 7) is None
    (tmp_path / "summary.json").write_text(json.dumps({"config": {**config, "late_rate": 0.5}}))
    assert earlier_window(tmp_path, 200, 300_000, 7) is None
