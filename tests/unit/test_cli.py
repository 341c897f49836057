"""The CLI: help on every command, errors as one line without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from billing.cli import app


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing", *args], capture_output=True, text=True, timeout=60)


def command_paths(group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from command_paths(cmd, (*prefix, name))


@pytest.mark.parametrize("path", sorted(command_paths(typer.main.get_command(app))), ids=" ".join)
def test_every_command_has_help(path):
    result = run_cli(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_billing_error_is_one_line_without_traceback():
    result = run_cli("down", "no-such-service")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "unknown service(s) no-such-service" in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--debug", "down", "no-such-service")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_warehouse_password_prints_the_generated_admin_password(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("BILLING_CLICKHOUSE_PASSWORD", raising=False)
    result = run_cli("warehouse", "password")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"default:{(tmp_path / 'secrets' / 'clickhouse_password').read_text()}\n"
    monkeypatch.delenv("BILLING_CLICKHOUSE_READONLY_PASSWORD", raising=False)
    readonly = run_cli("warehouse", "password", "--readonly")
    assert readonly.stdout == f"dashboards:{(tmp_path / 'secrets' / 'clickhouse_readonly_password').read_text()}\n"
