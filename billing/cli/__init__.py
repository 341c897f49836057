"""Entry point of the `billing` command. Command modules register themselves on ``app``."""

from __future__ import annotations

import sys

from clickhouse_connect.driver.exceptions import DatabaseError

from billing.cli import (  # noqa: F401  (register commands)  # noqa: F401
    alerts_cmds,  # noqa: F401
    api_cmds,  # noqa: F401
    dbt_cmds,
    demo_cmds,  # noqa: F401
    invoice_cmds,  # noqa: F401
    plan_cmds,
    platform_cmds,
    reconcile_cmds,  # noqa: F401
    report_cmds,
    reports_cmds,  # noqa: F401
    schema_cmds,
    simulate_cmds,  # noqa: F401
    superset_cmds,  # noqa: F401
    topics_cmds,  # noqa: F401
    warehouse_cmds,
    webhooks_cmds,  # noqa: F401
    worker_cmds,  # noqa: F401
)
from billing.cli.app import Options, app, err_console
from billing.core.errors import BillingError


def message(exc: Exception) -> str:
    """What the user sees: our own errors as written; ClickHouse errors as their DB::Exception line."""
    if isinstance(exc, BillingError):
        return str(exc)
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [repr(exc)]
    return next((line for line in lines if "DB::Exception" in line), lines[0])


def main() -> None:
    """Run the CLI; print errors as one line (full traceback with --debug)."""
    try:
        app()
    except (BillingError, DatabaseError) as exc:
        if Options.debug or "--debug" in sys.argv:
            raise
        err_console.print(f"[bold red]error:[/] {message(exc)}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
