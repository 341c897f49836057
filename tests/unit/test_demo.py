"""The demo's plan: steps are real commands, history covers last month."""

from __future__ import annotations

from datetime import datetime, timezone

from billing.cli.demo_cmds import demo_steps, last_month_start
from tests.unit.test_production_shape import resolves


def test_last_month_start_crosses_years():
    assert last_month_start(datetime(2026, 1, 15, 9, tzinfo=timezone.utc)) == datetime(2025, 12, 1, tzinfo=timezone.utc)
    assert last_month_start(datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)) == datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_every_demo_step_is_a_billing_command():
    for title, args in demo_steps(customers=10, events=100, seed=1):
        assert resolves(args), f"demo step {title!r} runs `billing {' '.join(args)}`, which is not a command"
